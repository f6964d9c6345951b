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
from safetensors import safe_open
from safetensors.torch import save_file

from models.atomic import atomic_directory
from models.errors import UserError
from models.hf.config_map import OLMO3, OLMO_HYBRID, hf_to_model_config, model_config_to_hf
from models.hf.weights import hf_to_zoo_state, zoo_to_hf_state
from models.pretrained import (
    TOKENIZER_FILE,
    check_pretrained,
    load_pretrained_state,
    pretrained_tokenizer,
    save_pretrained_state,
)

__all__ = ["export_hf", "hf_to_model_config", "import_hf", "model_config_to_hf"]

# Hugging Face's file names (its format, not ours: ours is models.pretrained).
HF_CONFIG_FILE, HF_WEIGHTS_FILE = "config.json", "model.safetensors"
HF_WEIGHTS_INDEX = HF_WEIGHTS_FILE + ".index.json"


def _read_json(file: Path) -> dict:
    """A JSON file of an HF directory; a parse error names the file."""
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{str(file)!r} is not valid JSON ({error}); repair or re-download it.") from None


def _read_hf_weights(hf_dir: Path) -> dict[str, torch.Tensor]:
    index = hf_dir / HF_WEIGHTS_INDEX
    if index.is_file():
        files = sorted(set(_read_json(index)["weight_map"].values()))
    elif (hf_dir / HF_WEIGHTS_FILE).is_file():
        files = [HF_WEIGHTS_FILE]
    else:
        raise UserError(
            f"no safetensors weights in {str(hf_dir)!r} ({HF_WEIGHTS_FILE} or its index); "
            "re-save the model with `save_pretrained(..., safe_serialization=True)`."
        )
    state = {}
    for name in files:
        try:
            with safe_open(str(hf_dir / name), framework="pt") as f:
                state |= {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is no dict
        except Exception as error:  # safetensors raises its own error type, and OSError for missing shards
            raise UserError(
                f"{str(hf_dir / name)!r} is incomplete or corrupt ({error}); re-download it."
            ) from None
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
    config_file = hf_dir / HF_CONFIG_FILE
    if not config_file.is_file():
        raise UserError(f"{str(hf_dir)!r} has no {HF_CONFIG_FILE}; pass a Hugging Face model directory.")
    cfg = hf_to_model_config(_standardized_hf_config(_read_json(config_file)), name=hf_dir.name)
    state = hf_to_zoo_state(cfg, _read_hf_weights(hf_dir))
    tokenizer = hf_dir / TOKENIZER_FILE  # HF and the zoo name the tokenizer file alike
    return save_pretrained_state(out_dir, cfg, state, tokenizer if tokenizer.is_file() else None)


def export_hf(zoo_dir: str | Path, hf_dir: str | Path) -> Path:
    """Write a zoo pretrained directory as an HF directory (config.json + model.safetensors)."""
    zoo_dir, hf_dir = Path(zoo_dir), Path(hf_dir)
    cfg = check_pretrained(zoo_dir)
    model_type, kwargs = model_config_to_hf(cfg)
    hf_config = _hf_config_class(model_type)(**kwargs)
    hf_config.architectures = ["Olmo3ForCausalLM" if model_type == OLMO3 else "OlmoHybridForCausalLM"]
    state = zoo_to_hf_state(cfg, load_pretrained_state(zoo_dir)[1])
    tokenizer = pretrained_tokenizer(zoo_dir)
    with atomic_directory(hf_dir) as tmp:
        hf_config.save_pretrained(tmp)
        save_file(state, str(tmp / HF_WEIGHTS_FILE), metadata={"format": "pt"})
        if tokenizer is not None:
            shutil.copyfile(tokenizer, tmp / TOKENIZER_FILE)
    return hf_dir
