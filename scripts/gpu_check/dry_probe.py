"""The dry run's probe, run once on the simulated image: import modules and compose training configs.

    python -m scripts.gpu_check.dry_probe '{"imports": [...], "composes": [[override, ...], ...]}'

Prints one JSON object, `{"imports": {module: error or null}, "composes": {"overrides": error or null}}`.
Everything happens in this one process, so the dry run pays for importing torch and Hydra once.
"""

from __future__ import annotations

import importlib
import json
import sys


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def compose_errors(composes: list[list[str]]) -> dict[str, str | None]:
    """Compose `python -m train OVERRIDES` with Hydra's API and build its typed config (nothing runs)."""
    try:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        from models.config import CONF_DIR
        from train.config import register_configs

        register_configs()
    except Exception as exc:
        return {" ".join(o): _error(exc) for o in composes}
    errors = {}
    for overrides in composes:
        try:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                OmegaConf.to_object(compose("train", overrides=[*overrides, "output_dir=/tmp/unused"]))
            errors[" ".join(overrides)] = None
        except Exception as exc:
            errors[" ".join(overrides)] = _error(exc)
    return errors


def main() -> None:
    spec = json.loads(sys.argv[1])
    imports = {}
    for module in spec["imports"]:
        try:
            importlib.import_module(module)
            imports[module] = None
        except Exception as exc:
            imports[module] = _error(exc)
    print(json.dumps({"imports": imports, "composes": compose_errors(spec["composes"])}))


if __name__ == "__main__":
    main()
