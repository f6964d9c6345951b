"""The pretrained format every tool reads: a directory with the resolved config and the weights.

    config.yaml        the resolved ModelConfig (plain YAML, no defaults lists)
    model.safetensors  the state dict, fp32 unless saved otherwise
    tokenizer.json     the tokenizer, when known

This module is the format's only home: nothing else spells these file names. Writes go to a
temporary sibling directory that is renamed into place, so a crash never leaves a half-written
checkpoint behind a valid-looking name. Reads are validated (`check_pretrained`): a config missing
the keys that fix the weights' shapes, or a weights file whose header does not parse, is reported
as an incomplete or corrupt checkpoint naming the file, before anything is built from it.

Configs saved before each mixer kind had its own config list every kind's fields in every mixer
(one flat config, `type` defaulting to attention); they still load: a field foreign to the mixer's
kind is dropped when it holds the flat config's default and refused, by name, otherwise.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import yaml
from omegaconf import OmegaConf
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from models.atomic import atomic_directory
from models.config import ModelConfig, model_config_from_dict
from models.errors import UserError
from models.mixer_entries import KINDS, kind_fields
from models.model import LM, build_model

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.yaml", "model.safetensors", "tokenizer.json"
# The keys that fix the weights' shapes; a saved config always holds them (others may be defaults).
REQUIRED_KEYS = ("vocab_size", "d_model", "n_layers", "n_heads", "mlp_hidden", "mixers", "pattern")
RESAVE = "re-save or re-export the checkpoint"
# Every field of the flat mixer config of older checkpoints, with its default (all kinds shared it).
LEGACY_MIXER_DEFAULTS = {
    "type": "attention", "n_heads": None, "norm_placement": None, "n_kv_heads": None, "head_dim": None,
    "window": None, "qk_norm": True, "rope": True, "rope_theta": 500_000.0, "yarn": None,
    "head_k_dim": None, "head_v_dim": None, "n_v_heads": None, "conv_size": 4, "allow_neg_eigval": True,
    "gate_norm_eps": 1e-5, "a_log_min": 0.0, "a_log_max": 16.0, "dt_min": 1e-3, "dt_max": 0.1,
    "dt_floor": 1e-4, "backend": "auto", "output_gate": True, "gate_low_rank_dim": 16,
    "gate_logit_normalizer": 16.0, "expand": 2.0, "state_size": 128, "ssm_head_dim": 64, "n_groups": 1,
    "conv_bias": True,
}  # fmt: skip


def is_pretrained_dir(path: str | Path) -> bool:
    """Whether `path` is meant as a hybridzoo pretrained directory (it holds our config file)."""
    return (Path(path) / CONFIG_FILE).is_file()


def save_pretrained(model: LM, path: str | Path, tokenizer_file: str | Path | None = None) -> Path:
    """Write `model` (and optionally a tokenizer.json) to `path` atomically; replaces an old one."""
    return _write(path, model.cfg, lambda file: save_model(model, str(file)), tokenizer_file)


def save_pretrained_state(
    path: str | Path,
    cfg: ModelConfig,
    state: dict[str, torch.Tensor],
    tokenizer_file: str | Path | None = None,
) -> Path:
    """Write a config and a state dict (tensors keep their dtype) as a pretrained directory."""
    return _write(
        path, cfg, lambda file: save_file(state, str(file), metadata={"format": "pt"}), tokenizer_file
    )


def _write(
    path: str | Path,
    cfg: ModelConfig,
    write_weights: Callable[[Path], None],
    tokenizer_file: str | Path | None,
) -> Path:
    path = Path(path)
    with atomic_directory(path) as tmp:
        (tmp / CONFIG_FILE).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        write_weights(tmp / WEIGHTS_FILE)
        if tokenizer_file is not None:
            shutil.copyfile(tokenizer_file, tmp / TOKENIZER_FILE)
    return path


def pretrained_tokenizer(path: str | Path) -> Path | None:
    """The pretrained directory's tokenizer.json, or None when it has none."""
    file = Path(path) / TOKENIZER_FILE
    return file if file.is_file() else None


def load_pretrained_config(path: str | Path, overrides: Sequence[str] = ()) -> ModelConfig:
    """The validated `ModelConfig` of a pretrained directory, plus `key=value` overrides."""
    path = Path(path)
    file = path / CONFIG_FILE
    if not file.is_file():
        raise UserError(
            f"{str(path)!r} is not a hybridzoo pretrained directory (needs {CONFIG_FILE} and {WEIGHTS_FILE}); "
            "for a Hugging Face checkpoint run `python -m models.hf import HF_DIR OUT_DIR` first."
        )
    try:
        data = OmegaConf.to_container(OmegaConf.load(file))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(
            f"checkpoint config {str(file)!r} is incomplete or corrupt ({type(error).__name__}); {RESAVE}."
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            f"checkpoint config {str(file)!r} is incomplete or corrupt (not a mapping); {RESAVE}."
        )
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise UserError(
            f"checkpoint config {str(file)!r} is incomplete or corrupt (no {', '.join(missing)}); {RESAVE}."
        )
    try:
        if isinstance(data["mixers"], dict):
            data["mixers"] = {name: _own_fields(name, entry) for name, entry in data["mixers"].items()}
        return model_config_from_dict(data, overrides)
    except UserError as error:
        raise UserError(f"checkpoint config {str(file)!r} is invalid: {error}") from None


def _own_fields(name: str, entry: object) -> object:
    """A saved mixer entry without the flat config's foreign fields at their defaults (see above)."""
    if not isinstance(entry, dict):
        return entry  # model_config_from_dict reports it
    kind = entry.get("type", LEGACY_MIXER_DEFAULTS["type"])
    own = kind_fields(kind) if kind in KINDS else []
    kept = {"type": kind}
    for key, value in entry.items():
        foreign = key != "type" and key not in own and key in LEGACY_MIXER_DEFAULTS and kind in KINDS
        if foreign and value != LEGACY_MIXER_DEFAULTS[key]:
            raise UserError(
                f"mixer {name!r} is {kind}, which has no field {key!r} and never read its {key}={value!r} "
                f"(the old default was {LEGACY_MIXER_DEFAULTS[key]!r}); delete {key} from that mixer in the file."
            )
        if not foreign:
            kept[key] = value
    return kept


def check_pretrained(path: str | Path) -> ModelConfig:
    """Validate a pretrained directory without loading its tensors: the config and the weights header."""
    cfg = load_pretrained_config(path)
    weights = Path(path) / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"checkpoint {str(path)!r} is incomplete: it has no {WEIGHTS_FILE}; {RESAVE}.")
    try:
        with safe_open(str(weights), framework="pt") as f:
            f.keys()
    except Exception as error:  # safetensors raises its own error type and OSError for unreadable files
        raise UserError(
            f"checkpoint weights {str(weights)!r} are incomplete or corrupt ({error}); {RESAVE}."
        ) from None
    return cfg


def load_pretrained_state(path: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """A validated pretrained directory's config and state dict (on CPU, dtypes as stored)."""
    cfg = check_pretrained(path)
    return cfg, load_file(str(Path(path) / WEIGHTS_FILE))


def load_pretrained(
    path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> LM:
    """Load a pretrained directory into an `LM` on `device` (optionally cast to `dtype`)."""
    path = Path(path)
    cfg = check_pretrained(path)
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
