"""Typed model configuration: named mixers, a cycled layer pattern, and validation.

A model is `embed -> blocks -> norm -> head`; every block has the same code and differs only in its
sequence mixer. Mixers are declared once under a name (`mixers: {attn: {...}, gdn: {...}}`) and laid
out by a pattern that is cycled over the depth (`pattern: [gdn, gdn, gdn, attn]`), so a layer mix is
one override (`model.pattern=[gdn,attn]`). `layer_overrides` replaces single layers by index.

The dataclasses are Hydra/OmegaConf structured configs: a typo in a YAML file or an override fails
when the config is composed. OmegaConf cannot type a field as a union of dataclasses, so all mixer
kinds share one `MixerConfig` with a `type` field; fields a type does not use are ignored by it.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from models.choices import Choice
from models.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


class MixerType(Choice):
    """Mixer kinds; each is a class registered in `models.mixers.MIXERS` under the same name."""

    attention = "attention"
    gated_deltanet = "gated_deltanet"
    mamba2 = "mamba2"
    gla = "gla"
    deltanet = "deltanet"


class NormPlacement(Choice):
    pre = "pre"  # x + f(norm(x))
    post = "post"  # x + norm(f(x)), Olmo 2/3


class GdnBackend(Choice):
    """Gated delta rule kernels (`models.ops.gated_delta_rule`); auto: fla on CUDA, else torch."""

    auto = "auto"
    fla = "fla"
    torch = "torch"
    torch_recurrent = "torch_recurrent"


MIXER_TYPES, NORM_PLACEMENTS = MixerType.values(), NormPlacement.values()


@dataclass
class YarnConfig:
    """YaRN RoPE scaling (Peng et al., 2023), as Olmo 3 uses on its full-attention layers."""

    factor: float = 8.0
    original_max_len: int = 8192
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    attention_factor: float | None = None  # default: 0.1 * ln(factor) + 1


@dataclass
class MixerConfig:
    """One named sequence mixer; `None` fields are filled from the model by `ModelConfig.mixer_for`."""

    type: MixerType = MixerType.attention
    n_heads: int | None = None  # default: the model's n_heads
    # Block norm placement for layers with this mixer; default: the model's norm_placement.
    norm_placement: NormPlacement | None = None
    # --- attention ---
    n_kv_heads: int | None = None  # grouped-query attention; default: n_heads
    head_dim: int | None = None  # default: d_model // n_heads
    window: int | None = None  # sliding window: query i sees keys j with i - window < j <= i
    qk_norm: bool = True  # Olmo-style RMSNorm over the whole q and k projections
    rope: bool = True
    rope_theta: float = 500_000.0
    yarn: YarnConfig | None = None
    # --- gated_deltanet ---
    # Defaults match attention's parameter count: H*K = d_model/2 and V = 2K, so q,k,v,gate,out
    # projections hold 4*d_model^2 like q,k,v,o of attention (Olmo Hybrid itself uses K = 0.75*d/H).
    head_k_dim: int | None = None  # default: d_model // (2 * n_heads)
    head_v_dim: int | None = None  # default: 2 * head_k_dim
    n_v_heads: int | None = None  # grouped value heads (several v heads share one q/k head)
    conv_size: int = 4
    allow_neg_eigval: bool = True  # beta in (0, 2) instead of (0, 1)
    gate_norm_eps: float = 1e-5
    a_log_min: float = 0.0  # A ~ U(a_log_min, a_log_max), stored as log A
    a_log_max: float = 16.0
    dt_min: float = 1e-3  # dt log-uniform in [dt_min, dt_max], floored, stored as softplus^-1(dt)
    dt_max: float = 0.1
    dt_floor: float = 1e-4
    backend: GdnBackend = GdnBackend.auto  # recurrence kernel (every recurrent type)
    # --- deltanet, gla (also head_k_dim, head_v_dim; deltanet also conv_size, allow_neg_eigval) ---
    output_gate: bool = True  # o = RMSNorm(o) * silu(gate_proj(x)) per head; else RMSNorm(o) alone
    # --- gla ---
    gate_low_rank_dim: int = 16  # forget gate log a = logsigmoid(W2 W1 x + b) / gate_logit_normalizer
    gate_logit_normalizer: float = 16.0
    # --- mamba2 (also conv_size, a_log_min/max (A range), dt_min/max/floor, gate_norm_eps) ---
    expand: float = 2.0  # inner width d_inner = expand * d_model
    state_size: int = 128  # N: width of B and C, the SSM state per channel
    ssm_head_dim: int = 64  # P: channels per SSM head; heads = d_inner / P
    n_groups: int = 1  # B/C groups shared by the heads (like grouped-query attention)
    conv_bias: bool = True


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
    # No default mixers: OmegaConf merges dicts key by key, so a default entry would linger in
    # every config that declares its own mixers.
    mixers: dict[str, MixerConfig] = field(default_factory=dict)
    pattern: list[str] = field(default_factory=list)
    layer_overrides: dict[int, str] = field(default_factory=dict)
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    training: TrainingContext = field(default_factory=TrainingContext)  # set by the trainer on export

    def __post_init__(self) -> None:
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
        for name in [*self.pattern, *self.layer_overrides.values()]:
            if name not in self.mixers:
                raise UserError(f"unknown mixer name {name!r} in the layer mix: known mixers are {known}.")
        for index in self.layer_overrides:
            if not 0 <= index < self.n_layers:
                raise UserError(f"layer_overrides index {index} is outside 0..{self.n_layers - 1}.")
        if self.norm_placement not in NORM_PLACEMENTS:  # a config built in Python skips OmegaConf's check
            raise UserError(
                f"norm_placement={self.norm_placement!r}: use one of {', '.join(NORM_PLACEMENTS)}."
            )
        for name in self.mixers:
            self._validate_mixer(name, self.mixer_for(name))

    def _validate_mixer(self, name: str, m: MixerConfig) -> None:
        where = f"mixer {name!r}"
        if m.type not in MIXER_TYPES:
            raise UserError(
                f"{where}: type={m.type!r} is not a mixer type; use one of {', '.join(MIXER_TYPES)}."
            )
        if m.norm_placement not in NORM_PLACEMENTS:
            raise UserError(
                f"{where}: norm_placement={m.norm_placement!r}; use one of {', '.join(NORM_PLACEMENTS)}."
            )
        if self.d_model % m.n_heads:
            raise UserError(
                f"{where}: n_heads={m.n_heads} does not divide d_model={self.d_model}; "
                "pick a head count that divides the width."
            )
        if m.type == "attention":
            if m.n_heads % m.n_kv_heads:
                raise UserError(f"{where}: n_kv_heads={m.n_kv_heads} must divide n_heads={m.n_heads}.")
            if m.rope and m.head_dim % 2:
                raise UserError(f"{where}: RoPE needs an even head_dim, got {m.head_dim}.")
            if m.window is not None and m.window < 1:
                raise UserError(f"{where}: window={m.window} must be positive, or null for full attention.")
        elif m.type == "mamba2":
            self._validate_mamba2(where, m)
        else:
            if m.type == "gla" and m.n_v_heads != m.n_heads:
                raise UserError(
                    f"{where}: gla has one value head per q/k head; set n_v_heads={m.n_heads} or null."
                )
            if m.type == "gla" and (m.gate_low_rank_dim < 1 or m.gate_logit_normalizer <= 0):
                raise UserError(
                    f"{where}: gate_low_rank_dim={m.gate_low_rank_dim} and gate_logit_normalizer="
                    f"{m.gate_logit_normalizer} must both be positive."
                )
            if m.n_v_heads % m.n_heads:
                raise UserError(
                    f"{where}: n_v_heads={m.n_v_heads} must be a multiple of n_heads={m.n_heads}."
                )
            if min(m.head_k_dim, m.head_v_dim, m.conv_size) < 1:
                raise UserError(f"{where}: head_k_dim, head_v_dim and conv_size must be positive.")

    def _validate_mamba2(self, where: str, m: MixerConfig) -> None:
        d_inner = m.expand * self.d_model
        if d_inner != int(d_inner) or int(d_inner) % m.ssm_head_dim:
            raise UserError(
                f"{where}: d_inner = expand * d_model = {d_inner:g} must be a whole multiple of "
                f"ssm_head_dim={m.ssm_head_dim}; change expand or ssm_head_dim."
            )
        heads = int(d_inner) // m.ssm_head_dim
        if m.n_groups < 1 or heads % m.n_groups:
            raise UserError(f"{where}: n_groups={m.n_groups} must divide the {heads} SSM heads.")
        if min(m.state_size, m.conv_size) < 1:
            raise UserError(
                f"{where}: state_size={m.state_size} and conv_size={m.conv_size} must be positive."
            )

    def layer_mixer_names(self) -> list[str]:
        """The mixer name of every layer: the pattern cycled over the depth, then the overrides."""
        names = [self.pattern[i % len(self.pattern)] for i in range(self.n_layers)]
        for index, name in self.layer_overrides.items():
            names[index] = name
        return names

    def mixer_for(self, name: str) -> MixerConfig:
        """The named mixer's config with every `None` default resolved against this model."""
        m = self.mixers[name]
        n_heads = m.n_heads or self.n_heads
        head_k_dim = m.head_k_dim or max(1, self.d_model // (2 * n_heads))
        return dataclasses.replace(
            m,
            n_heads=n_heads,
            norm_placement=m.norm_placement or self.norm_placement,
            n_kv_heads=m.n_kv_heads or n_heads,
            head_dim=m.head_dim or self.d_model // n_heads,
            head_k_dim=head_k_dim,
            head_v_dim=m.head_v_dim or 2 * head_k_dim,
            n_v_heads=m.n_v_heads or n_heads,
        )

    def layer_mixers(self) -> list[MixerConfig]:
        """Resolved mixer config of every layer, in order."""
        return [self.mixer_for(name) for name in self.layer_mixer_names()]

    def to_dict(self) -> dict:
        """A plain dict (YAML/JSON-ready) of this config."""
        return OmegaConf.to_container(OmegaConf.structured(self), resolve=True, enum_to_str=True)


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
        close = difflib.get_close_matches(name, available_model_configs(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"unknown model config {name!r}: {hint}use a YAML path or a file name from conf/model/ (ls conf/model)."
        )
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        composed = compose(config_name=None, overrides=[f"+model={name}"])
    return model_config_from_dict(OmegaConf.to_container(composed.model, resolve=True), overrides)
