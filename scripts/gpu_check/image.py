"""The device image: what it holds, how `.whl/` is installed beside its torch, and a CPU stand-in for it.

The GPU machine reaches no package index. Its image carries a CUDA torch and the packages in
`IMAGE_PACKAGES` (with whatever those require); everything else the check imports comes from the
wheels `scripts/gather_device_wheels.sh` puts into `.whl/`. `install_wheels` unpacks them into a
temporary folder that goes first on PYTHONPATH, so the image's own torch is never touched.

`guarded_env` simulates the image on a CPU machine: `image_guard/sitecustomize.py` hides every
top-level module that only a site-packages folder holds unless an image package provides it, so a
step that needs, say, omegaconf passes the dry run only when `.whl/` holds it.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

# As seen in the image (CUDA torch 2.11, Python 3.12); their own requirements come with them.
IMAGE_PACKAGES = (
    "torch", "triton", "transformers", "einops", "pandas", "pyarrow", "scipy", "statsmodels",
    "matplotlib", "tokenizers", "safetensors",
)  # fmt: skip
GUARD_DIR = Path(__file__).with_name("image_guard")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_distributions() -> set[str]:
    """`IMAGE_PACKAGES` and everything they require (no extras), as installed here; one that is not
    installed here (triton on a CPU machine) counts by name only."""
    seen: set[str] = set()
    todo = [_normalise(n) for n in IMAGE_PACKAGES]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_normalise(req.name))
    return seen


def image_modules() -> list[str]:
    """Top-level module names that the image's distributions provide."""
    image = image_distributions()
    provided = metadata.packages_distributions()
    return sorted(m for m, dists in provided.items() if any(_normalise(d) in image for d in dists))


def install_wheels(wheels: Path, target: Path) -> list[str]:
    """Unpack every `*.whl` in `wheels` into `target` (what pip does for pure-Python wheels, with no
    pip needed); returns the wheel names. `*.data/purelib|platlib` go to the top as pip puts them."""
    names = []
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                parts = member.filename.split("/")
                if parts[0].endswith(".data"):
                    if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                        continue  # scripts and headers: nothing the check runs
                    parts = parts[2:]
                path = target.joinpath(*parts)
                if member.is_dir():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.read(member))
        names.append(wheel.name)
    return names


def device_env(site: Path, root: Path, sdists: Path) -> dict[str, str]:
    """The environment of every step: `.whl/`'s packages first, then the project, then the image."""
    path = os.pathsep.join([str(site), str(root)])
    return {**os.environ, "PYTHONPATH": path, "HYBRIDZOO_CACHE": str(sdists)}


def guarded_env(site: Path, root: Path, sdists: Path, work: Path) -> dict[str, str]:
    """`device_env` plus the image guard: modules from site-packages only where the image has them."""
    allowed = work / "image_modules.json"
    allowed.write_text(json.dumps(image_modules()))
    env = device_env(site, root, sdists)
    env["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR), env["PYTHONPATH"]])
    env["HYBRIDZOO_IMAGE_MODULES"] = str(allowed)
    return env
