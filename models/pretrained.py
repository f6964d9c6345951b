"""The pretrained format every tool reads: a directory with the resolved config and the weights.

    config.yaml        the resolved ModelConfig (plain YAML, no defaults lists)
    model.safetensors  the state dict, fp32 unless saved otherwise
    tokenizer.json     the tokenizer, when known

Writes go to a temporary sibling directory that is renamed into place, so a crash never leaves a
half-written checkpoint behind a valid-looking name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_model, save_model

from models.atomic import atomic_directory
from models.config import ModelConfig, load_model_config
from models.errors import UserError
from models.model import LM, build_model

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.yaml", "model.safetensors", "tokenizer.json"


def save_pretrained(model: LM, path: str | Path, tokenizer_file: str | Path | None = None) -> Path:
    """Write `model` (and optionally a tokenizer.json) to `path` atomically; replaces an old one."""
    path = Path(path)
    with atomic_directory(path) as tmp:
        (tmp / CONFIG_FILE).write_text(yaml.safe_dump(model.cfg.to_dict(), sort_keys=False))
        save_model(model, str(tmp / WEIGHTS_FILE))
        if tokenizer_file is not None:
            shutil.copyfile(tokenizer_file, tmp / TOKENIZER_FILE)
    return path


def load_pretrained(
    path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> LM:
    """Load a pretrained directory into an `LM` on `device` (optionally cast to `dtype`)."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise UserError(
            f"{str(path)!r} is not a hybridzoo pretrained directory (needs {CONFIG_FILE} and {WEIGHTS_FILE}); "
            "for a Hugging Face checkpoint run `python -m models.hf import HF_DIR OUT_DIR` first."
        )
    cfg: ModelConfig = load_model_config(path)
    model = build_model(cfg, device="meta").to_empty(device=device)
    model.tie_weights()
    missing, unexpected = load_model(model, str(path / WEIGHTS_FILE), strict=False, device=str(device))
    if cfg.tie_embeddings:
        missing = [name for name in missing if name != "head.weight"]  # stored once, as embed.weight
    if missing or unexpected:
        raise UserError(
            f"weights in {str(path / WEIGHTS_FILE)!r} do not match its config: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}; re-export the checkpoint."
        )
    return model.to(dtype) if dtype is not None else model
