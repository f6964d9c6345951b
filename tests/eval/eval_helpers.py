"""Shared test material for the eval tests: handcrafted texts, a BPE trained here, tiny models."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from models import build_model, load_model_config, save_pretrained

EOS = "<|endoftext|>"
PROSE = (
    "The old man walked slowly to the river. He said that there is a boat (a small one) near the bank. "
    "The old man walked slowly back home, and she quickly followed him."
)
PYTHON = 'def area(width, height):\n    return [width * height, {"w": width}]\n\nprint(area(2, 3))\n'
HTML = '<div class="box"><p>Hello <br> world</p><img src="a.png"/></div>\n'
LATEX = "\\begin{itemize}\n\\item First point $x^{2}$\n\\end{itemize}\n"
TEXTS = [PROSE, PYTHON, HTML, LATEX]
DOMAINS = ["prose", "python", "html", "latex"]


def train_tokenizer(vocab_size: int = 400) -> Tokenizer:
    """Byte-level BPE (GPT-2 pre-tokenisation) trained on the handcrafted texts, EOS id 0."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TEXTS * 3, trainer)
    return tok


def save_tiny(path: Path, arch: str, tokenizer_file: Path | None, seed: int = 0) -> Path:
    """A random tiny zoo model (2 layers, vocab 512) in the pretrained format."""
    cfg = load_model_config(
        arch, ["n_layers=2", "vocab_size=512", *(["pattern=[gdn,attn]"] if arch == "tiny_hybrid" else [])]
    )
    torch.manual_seed(seed)
    save_pretrained(
        build_model(cfg), str(path), tokenizer_file=str(tokenizer_file) if tokenizer_file else None
    )
    return path


def corpus_files(root: Path) -> list[str]:
    """Overrides selecting a `sources` corpus of the handcrafted texts (one .txt per document), given as
    a user config directory on Hydra's search path, the way users add their own corpora."""
    lines = ["defaults:", "  - corpus_schema", "  - _self_", "name: handcrafted", "type: sources", "sources:"]
    for text, domain in zip(TEXTS, DOMAINS):
        (root / f"{domain}.txt").write_text(text)
        lines.append(f"  {domain}: {{type: local, paths: ['{root / f'{domain}.txt'}'], domain: {domain}}}")
    (root / "conf" / "corpus").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "corpus" / "handcrafted.yaml").write_text("\n".join(lines) + "\n")
    return [f"hydra.searchpath=[file://{root / 'conf'}]", "corpus=handcrafted"]


def run_eval(
    tmp_path: Path, models: list[Path], *extra: str, patch: str = ""
) -> tuple[subprocess.CompletedProcess, Path]:
    """`python -m eval` in a subprocess on the handcrafted corpus (W=64); returns it and its run dir.

    `patch` is Python run first (to plant a bug), then eval's own entry as `-m eval` runs it."""
    out = tmp_path / "run"
    args = [f"models=[{','.join(map(str, models))}]", *corpus_files(tmp_path),
            "score.window=64", "report.n_boot=100", f"cache_dir={tmp_path / 'cache'}", "progress=false",
            f"hydra.run.dir={out}", *extra]  # fmt: skip
    command = [sys.executable, "-m", "eval", *args]
    if patch:
        run = f"import runpy, sys; sys.argv[1:] = {args!r}; runpy.run_module('eval', run_name='__main__')"
        command = [sys.executable, "-c", f"{patch}; {run}"]
    return subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[2]), out


def trained_at(source: Path, out: Path, seq_len: int, precision: str = "fp32") -> Path:
    """A copy of a pretrained dir whose config.yaml records training at `seq_len` in `precision`."""
    shutil.copytree(source, out)
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["training"] = {"seq_len": seq_len, "precision": precision, "steps": 10, "tokens": 1000}
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out
