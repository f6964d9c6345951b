"""tokens.html renders in headless Chromium: every token span is in the DOM and the page is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from eval_helpers import DOMAINS, TEXTS

from eval.annotate import annotate
from eval.html import tokens_html

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed but CI is set; install it: apt-get install -y chromium")
        pytest.skip("chromium is not installed (apt-get install -y chromium); the browser check did not run")
    return path


def page(tmp_path: Path, tokenizer_file) -> tuple[Path, pd.DataFrame]:
    table = annotate(TEXTS, tokenizer_file, DOMAINS)
    rng = np.random.default_rng(0)
    table["loss_t"] = rng.gamma(2.0, 1.0, len(table))
    table["loss_h"] = table["loss_t"] + rng.normal(0, 0.5, len(table))
    path = tmp_path / "tokens.html"
    path.write_text(tokens_html(table, TEXTS, "t", "h", max_tokens=10_000))
    return path, table


def test_tokens_html_renders_in_chromium(tmp_path, tokenizer_file) -> None:
    browser = chromium()
    path, table = page(tmp_path, tokenizer_file)
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [browser, *FLAGS, *profile, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="tok"') == len(table)
    assert "loss t:" in dom.stdout and "&lt;/" in dom.stdout  # hover text present, markup shown as text
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *FLAGS, *profile, "--window-size=900,700", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 10  # not blank
    blue = (pixels[..., 2] > pixels[..., 0] + 40).mean()
    red = (pixels[..., 0] > pixels[..., 2] + 40).mean()
    assert blue > 0.001 and red > 0.001  # tokens are coloured both ways
