"""Hugging Face interop: transformers' `Olmo3ForCausalLM` / `OlmoHybridForCausalLM` <-> the zoo.

`import_hf(HF_DIR, OUT_DIR)` brings a real Olmo 3 / Olmo Hybrid checkpoint into the zoo's
pretrained format for evaluation; `export_hf(ZOO_DIR, HF_DIR)` writes a directory that
`AutoModelForCausalLM.from_pretrained` loads. Tensors are streamed file by file and keep their
dtype. Both write to a temporary directory and rename it into place.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from models.atomic import atomic_directory
from models.config import load_model_config
from models.errors import UserError
from models.hf.config_map import OLMO3, OLMO_HYBRID, hf_to_model_config, model_config_to_hf
from models.hf.weights import hf_to_zoo_state, zoo_to_hf_state
from models.pretrained import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE

__all__ = ["export_hf", "hf_to_model_config", "import_hf", "model_config_to_hf"]


def _read_hf_weights(hf_dir: Path) -> dict[str, torch.Tensor]:
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (hf_dir / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise UserError(
            f"no safetensors weights in {str(hf_dir)!r} (model.safetensors or its index); "
            "re-save the model with `save_pretrained(..., safe_serialization=True)`."
        )
    state = {}
    for name in files:
        with safe_open(str(hf_dir / name), framework="pt") as f:
            state |= {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is no dict
    return state


def _hf_config_class(model_type: str | None) -> type:
    from transformers import Olmo3Config, OlmoHybridConfig

    return Olmo3Config if model_type == OLMO3 else OlmoHybridConfig


def _standardized_hf_config(raw: dict) -> dict:
    """The config as transformers reads it (defaults filled, RoPE parameters standardised)."""
    if raw.get("model_type") not in (OLMO3, OLMO_HYBRID):
        return raw  # hf_to_model_config names the unsupported type
    return _hf_config_class(raw["model_type"]).from_dict(raw).to_dict()


def import_hf(hf_dir: str | Path, out_dir: str | Path) -> Path:
    """Convert an HF Olmo 3 / Olmo Hybrid directory into a zoo pretrained directory."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    config_file = hf_dir / "config.json"
    if not config_file.is_file():
        raise UserError(f"{str(hf_dir)!r} has no config.json; pass a Hugging Face model directory.")
    cfg = hf_to_model_config(_standardized_hf_config(json.loads(config_file.read_text())), name=hf_dir.name)
    state = hf_to_zoo_state(cfg, _read_hf_weights(hf_dir))
    with atomic_directory(out_dir) as tmp:
        (tmp / CONFIG_FILE).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        if (hf_dir / TOKENIZER_FILE).is_file():
            shutil.copyfile(hf_dir / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
    return out_dir


def export_hf(zoo_dir: str | Path, hf_dir: str | Path) -> Path:
    """Write a zoo pretrained directory as an HF directory (config.json + model.safetensors)."""
    zoo_dir, hf_dir = Path(zoo_dir), Path(hf_dir)
    if not (zoo_dir / WEIGHTS_FILE).is_file():
        raise UserError(f"{str(zoo_dir)!r} has no {WEIGHTS_FILE}; pass a hybridzoo pretrained directory.")
    cfg = load_model_config(zoo_dir)
    model_type, kwargs = model_config_to_hf(cfg)
    hf_config = _hf_config_class(model_type)(**kwargs)
    hf_config.architectures = ["Olmo3ForCausalLM" if model_type == OLMO3 else "OlmoHybridForCausalLM"]
    state = zoo_to_hf_state(cfg, load_file(str(zoo_dir / WEIGHTS_FILE)))
    with atomic_directory(hf_dir) as tmp:
        hf_config.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        if (zoo_dir / TOKENIZER_FILE).is_file():
            shutil.copyfile(zoo_dir / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
    return hf_dir
