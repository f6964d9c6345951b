"""Typed model configuration: named mixers, a cycled layer pattern, and validation.

A model is `embed -> blocks -> norm -> head`; every block has the same code and differs only in its
sequence mixer. Mixers are declared once under a name (`mixers: {attn: {type: attention}, gdn:
{type: gated_deltanet}}`) and laid out by a pattern that is cycled over the depth (`pattern: [gdn,
gdn, gdn, attn]`), so a layer mix is one override (`model.pattern=[gdn,attn]`). `layer_overrides`
replaces single layers by index. Every declared mixer must be used by some layer.

Each mixer kind has its own config dataclass beside its module, chosen by the entry's required
`type` through the registry `models.mixers.MIXER_CONFIGS` (`AttentionConfig` in
`models/mixers/attention.py`, `GatedDeltaNetConfig` in `models/mixers/gated_deltanet.py`, ...).
The dataclasses are Hydra/OmegaConf structured configs: a typo in a YAML file or an override fails
when the config is composed; a field of another kind, a missing or unknown `type`, or an unused
mixer fails when `ModelConfig` is built (`models.mixer_entries`), before anything runs.
`mixer_defaults` set fields of every mixer of one kind (what an experiment that tunes one kind uses).

A new mixer is one file in `models/mixers/` (its config dataclass with `type = "<kind>"` and its
module with `config_class`), its class in the tuple of `models/mixers/__init__.py`, and YAML in
`conf/model/` (docs/design.md).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from models.errors import UserError, did_you_mean
from models.mixer_entries import MixerEntry, check_mixer_defaults, mixer_from_entry
from models.mixers import MixerConfig
from models.mixers.base import NormPlacement

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@dataclass
class TrainingContext:
    """How a checkpoint's weights were trained, written by the trainer into the pretrained config.

    Eval scores a model the way it was trained: `score.window` defaults to `seq_len` and
    `score.dtype` to `precision`. Every field is None in configs the trainer did not write (the
    shipped `conf/model/` files, Hugging Face imports, checkpoints saved before this field existed).
    """

    seq_len: int | None = None  # tokens per training sequence
    precision: str | None = None  # "fp32" or "bf16": the trainer's compute precision
    steps: int | None = None  # optimizer steps taken when these weights were saved
    tokens: int | None = None  # training tokens seen when these weights were saved


@dataclass
class ModelConfig:
    """A whole language model. See the module docstring for the mixer/pattern scheme."""

    name: str = "custom"
    vocab_size: int = 100352
    d_model: int = 2048
    n_layers: int = 16
    n_heads: int = 16
    mlp_hidden: int = 8192  # SwiGLU inner width
    norm_eps: float = 1e-6
    norm_placement: NormPlacement = NormPlacement.post
    tie_embeddings: bool = False
    init_std: float = 0.02
    # Composed as `MixerEntry`s (any kind's fields), then each replaced by its kind's typed config
    # in __post_init__. No default mixers: OmegaConf merges dicts key by key, so a default entry
    # would linger in every config that declares its own mixers.
    mixers: dict[str, MixerEntry] = field(default_factory=dict)
    # Per-kind values for the fields a mixer entry leaves unset: {gated_deltanet: {a_log_max: 0.01}}
    # tunes every Gated DeltaNet mixer and creates none where the model has no such mixer.
    mixer_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    pattern: list[str] = field(default_factory=list)
    layer_overrides: dict[int, str] = field(default_factory=dict)
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    training: TrainingContext = field(default_factory=TrainingContext)  # set by the trainer on export

    def __post_init__(self) -> None:
        check_mixer_defaults(self.mixer_defaults)
        self.mixers: dict[str, MixerConfig] = {
            name: mixer_from_entry(name, entry, self.mixer_defaults) for name, entry in self.mixers.items()
        }
        self.validate()

    def validate(self) -> None:
        """Raise `UserError` naming the bad value and the fix; called on construction."""
        if not self.pattern:
            raise UserError("model.pattern is empty: name at least one mixer, e.g. pattern=[attn].")
        if self.n_layers % len(self.pattern):
            raise UserError(
                f"model.pattern {list(self.pattern)} (length {len(self.pattern)}) does not divide "
                f"n_layers={self.n_layers}: use a pattern whose length divides the depth, or change n_layers."
            )
        known = sorted(self.mixers)
        used = [*self.pattern, *self.layer_overrides.values()]
        for name in used:
            if name not in self.mixers:
                raise UserError(
                    f"unknown mixer name {name!r} in the layer mix: {did_you_mean(name, known)}known mixers are {known}."
                )
        for name in self.mixers:
            if name not in used:
                raise UserError(
                    f"mixer {name!r} is used by no layer (pattern {list(self.pattern)}, layer_overrides "
                    f"{dict(self.layer_overrides)}): use it in model.pattern or remove it (~model.mixers.{name})."
                )
        for index in self.layer_overrides:
            if not 0 <= index < self.n_layers:
                raise UserError(f"layer_overrides index {index} is outside 0..{self.n_layers - 1}.")
        NormPlacement.parse(self.norm_placement, "norm_placement")  # a config built in Python skips OmegaConf
        for name in self.mixers:
            try:
                self.mixer_for(name).validate(self.d_model)
            except UserError as error:
                raise UserError(f"mixer {name!r}: {error}") from None

    def layer_mixer_names(self) -> list[str]:
        """The mixer name of every layer: the pattern cycled over the depth, then the overrides."""
        names = [self.pattern[i % len(self.pattern)] for i in range(self.n_layers)]
        for index, name in self.layer_overrides.items():
            names[index] = name
        return names

    def mixer_for(self, name: str) -> MixerConfig:
        """The named mixer's typed config with every `None` default resolved against this model."""
        return self.mixers[name].resolve(self.d_model, self.n_heads, self.norm_placement)

    def layer_mixers(self) -> list[MixerConfig]:
        """Resolved mixer config of every layer, in order."""
        return [self.mixer_for(name) for name in self.layer_mixer_names()]

    def to_dict(self) -> dict:
        """A plain dict (YAML/JSON-ready) of this config; each mixer holds its `type` and its kind's fields."""
        shell = copy.copy(self)
        shell.mixers = {}  # the typed mixers do not fit the composed schema's MixerEntry
        data = _plain(shell)
        data["mixers"] = {name: {"type": m.type, **_plain(m)} for name, m in self.mixers.items()}
        return data


def _plain(config: object) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True, enum_to_str=True)


def model_config_from_dict(data: dict, overrides: Sequence[str] = ()) -> ModelConfig:
    """Build a validated `ModelConfig` from a plain dict plus `key=value` dotlist overrides.

    Unknown keys and ill-typed values become a `UserError` with OmegaConf's description.
    """
    try:
        schema = OmegaConf.structured(ModelConfig)
        merged = OmegaConf.merge(schema, data, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        message = str(error).splitlines()[0]
        key = f"{error.full_key}: " if getattr(error, "full_key", None) else ""
        raise UserError(f"invalid model config: {key}{message}; fix that key or value.") from None


def available_model_configs() -> list[str]:
    """Names of the model configs shipped in `conf/model/`."""
    return sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def load_model_config(name_or_path: str | Path, overrides: Sequence[str] = ()) -> ModelConfig:
    """Load a model config by name (`conf/model/NAME.yaml`) or YAML path.

    Names are composed with Hydra, so shipped configs may use defaults lists (architecture and size
    pieces); a path is read as one self-contained YAML file. Pretrained directories are read by
    `models.pretrained.load_pretrained_config`, which validates them.
    """
    path = Path(name_or_path)
    if path.is_dir():
        raise UserError(
            f"{str(path)!r} is a directory; pass a model name or a YAML file "
            "(pretrained directories: models.pretrained.load_pretrained_config)."
        )
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(
                f"model config file {str(path)!r} does not exist; pass a YAML path or a model name."
            )
        try:
            data = OmegaConf.to_container(OmegaConf.load(path))
        except yaml.YAMLError as error:
            raise UserError(
                f"model config file {str(path)!r} is not valid YAML ({getattr(error, 'problem', error)}); fix it."
            ) from None
        return model_config_from_dict(data, overrides)
    name = str(name_or_path)
    if name not in available_model_configs():
        hint = did_you_mean(name, available_model_configs())
        raise UserError(
            f"unknown model config {name!r}: {hint}use a YAML path or a file name from conf/model/ (ls conf/model)."
        )
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        composed = compose(config_name=None, overrides=[f"+model={name}"])
    return model_config_from_dict(OmegaConf.to_container(composed.model, resolve=True), overrides)
