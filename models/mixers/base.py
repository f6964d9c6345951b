"""What every mixer config shares: the base class, its closed-set choices, and two shared field groups.

Each mixer kind has its own config dataclass beside its module (`AttentionConfig` in
`models/mixers/attention.py`, ...), named by the class variable `type` (the registry key of
`models.mixers.MIXERS` and what YAML spells as `type:`). A kind's config holds only the fields its
module reads, so a saved config lists nothing foreign and `ModelConfig` refuses a field another
kind owns. `None` fields are model-dependent defaults that `resolve` fills from the model.

Fields whose type admits `None` must default to `None`: in a composed YAML entry `None` means
"not set" (`models.config.MixerEntry`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from models.choices import Choice
from models.errors import UserError


class NormPlacement(Choice):
    pre = "pre"  # x + f(norm(x))
    post = "post"  # x + norm(f(x)), Olmo 2/3


class GdnBackend(Choice):
    """Recurrence kernels of every recurrent kind (`models.ops`); auto: fla on CUDA, else torch."""

    auto = "auto"
    fla = "fla"
    torch = "torch"
    torch_recurrent = "torch_recurrent"


@dataclass
class MixerConfig:
    """Base of every mixer kind's config; subclasses set `type` and add their own fields."""

    type: ClassVar[str]  # the kind: its key in models.mixers.MIXERS and the YAML `type:` value
    # Block norm placement for layers with this mixer; default: the model's norm_placement.
    norm_placement: NormPlacement | None = None

    def resolve(self, d_model: int, n_heads: int, norm_placement: str) -> MixerConfig:
        """This config with every `None` default filled from the model's width, heads and norm."""
        return dataclasses.replace(
            self,
            norm_placement=self.norm_placement or norm_placement,
            **self.derived_defaults(d_model, n_heads),
        )

    def derived_defaults(self, d_model: int, n_heads: int) -> dict:
        """Values for this kind's model-dependent `None` fields (subclasses extend)."""
        return {}

    def validate(self, d_model: int) -> None:
        """Raise `UserError` naming a bad value of this resolved config (without the mixer's name)."""
        NormPlacement.parse(self.norm_placement, "norm_placement")


def check_heads(d_model: int, n_heads: int) -> None:
    """Heads that split the model width evenly."""
    if n_heads < 1 or d_model % n_heads:
        raise UserError(
            f"n_heads={n_heads} does not divide d_model={d_model}; pick a head count that divides the width."
        )


@dataclass
class LinearAttentionConfig(MixerConfig):
    """Fields of the linear-attention kinds (Gated DeltaNet, DeltaNet, GLA): q/k heads of width K,
    value heads of width V, a per-head output norm and a recurrence kernel.

    Defaults match attention's parameter count: H*K = d_model/2 and V = 2K, so q,k,v,gate,out
    projections hold 4*d_model^2 like q,k,v,o of attention (Olmo Hybrid itself uses K = 0.75*d/H).
    """

    n_heads: int | None = None  # default: the model's n_heads
    head_k_dim: int | None = None  # default: d_model // (2 * n_heads)
    head_v_dim: int | None = None  # default: 2 * head_k_dim
    gate_norm_eps: float = 1e-5
    backend: GdnBackend = GdnBackend.auto  # recurrence kernel

    def derived_defaults(self, d_model: int, n_heads: int) -> dict:
        heads = self.n_heads or n_heads
        head_k_dim = self.head_k_dim or max(1, d_model // (2 * heads))
        return {"n_heads": heads, "head_k_dim": head_k_dim, "head_v_dim": self.head_v_dim or 2 * head_k_dim}

    def validate(self, d_model: int) -> None:
        super().validate(d_model)
        check_heads(d_model, self.n_heads)
        GdnBackend.parse(self.backend, "backend")
        if min(self.head_k_dim, self.head_v_dim) < 1:
            raise UserError(
                f"head_k_dim={self.head_k_dim} and head_v_dim={self.head_v_dim} must be positive."
            )


@dataclass
class DecayInit:
    """Mamba-2's initialisation of a per-head decay `-exp(A_log) * softplus(x + dt_bias)`."""

    a_log_min: float = 0.0  # A ~ U(a_log_min, a_log_max), stored as log A
    a_log_max: float = 16.0
    dt_min: float = 1e-3  # dt log-uniform in [dt_min, dt_max], floored, stored as softplus^-1(dt)
    dt_max: float = 0.1
    dt_floor: float = 1e-4
