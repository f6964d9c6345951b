"""Mamba-2 (Dao & Gu, 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms
Through Structured State Space Duality"), the SSD layer of mamba_ssm's `Mamba2`.

One in-projection gives z (gate), x (values), B (keys), C (queries) and dt per head. x, B and C pass a
short causal depthwise convolution + SiLU; `dt = softplus(dt + dt_bias)`, `A = -exp(A_log)` per head.
Per head h with P channels and state size N, the SSD recurrence is

    S_t = exp(dt_t A) S_{t-1} + B_t (dt_t x_t)^T,   y_t = S_t^T C_t + D x_t      (S_t: [N, P])

i.e. `simple_gla(q=C, k=B, v=dt*x, g=dt*A, scale=1)`, B and C shared by the heads of a group. The
output is `RMSNorm(y * silu(z))` (gate before norm, per group) and an out-projection. dt_bias and
A_log are initialised as in the reference: dt log-uniform in [dt_min, dt_max] (floored), A ~ U(A range).

Shapes: B batch, T time, D model width, E inner width (expand * D), NH SSM heads, P = E / NH,
G groups of B/C, N state size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import UserError
from models.init import init_linear
from models.mixers.base import DecayInit, GdnBackend, MixerConfig
from models.ops import short_conv, simple_gla
from models.packing import Packing

CHUNK_SIZE = 64  # the chunk length of the torch and fla kernels, used for the FLOP count


@dataclass
class Mamba2Config(DecayInit, MixerConfig):
    """Mamba-2's fields: inner width, SSM state and heads, B/C groups, conv, decay init, kernel."""

    type = "mamba2"
    expand: float = 2.0  # inner width d_inner = expand * d_model
    state_size: int = 128  # N: width of B and C, the SSM state per channel
    ssm_head_dim: int = 64  # P: channels per SSM head; heads = d_inner / P
    n_groups: int = 1  # B/C groups shared by the heads (like grouped-query attention)
    conv_size: int = 4
    conv_bias: bool = True
    gate_norm_eps: float = 1e-5
    backend: GdnBackend = GdnBackend.auto  # recurrence kernel

    def validate(self, d_model: int) -> None:
        super().validate(d_model)
        GdnBackend.parse(self.backend, "backend")
        d_inner = self.expand * d_model
        if d_inner != int(d_inner) or int(d_inner) % self.ssm_head_dim:
            raise UserError(
                f"d_inner = expand * d_model = {d_inner:g} must be a whole multiple of "
                f"ssm_head_dim={self.ssm_head_dim}; change expand or ssm_head_dim."
            )
        heads = int(d_inner) // self.ssm_head_dim
        if self.n_groups < 1 or heads % self.n_groups:
            raise UserError(f"n_groups={self.n_groups} must divide the {heads} SSM heads.")
        if min(self.state_size, self.conv_size) < 1:
            raise UserError(f"state_size={self.state_size} and conv_size={self.conv_size} must be positive.")


def _dims(cfg: Mamba2Config, d_model: int) -> tuple[int, int, int]:
    """(inner width E, SSM heads NH, conv channels E + 2 G N)."""
    d_inner = int(cfg.expand * d_model)
    return d_inner, d_inner // cfg.ssm_head_dim, d_inner + 2 * cfg.n_groups * cfg.state_size


class Mamba2(nn.Module):
    """The Mamba-2 sequence mixer; see the module docstring for the recurrence."""

    config_class = Mamba2Config

    def __init__(self, cfg: Mamba2Config, d_model: int, norm_eps: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.d_inner, self.n_ssm_heads, conv_width = _dims(cfg, d_model)
        self.split = (self.d_inner, conv_width, self.n_ssm_heads)  # z, xBC, dt
        self.in_proj = nn.Linear(d_model, sum(self.split), bias=False)
        self.conv_weight = nn.Parameter(torch.empty(conv_width, cfg.conv_size))  # depthwise
        self.conv_bias = nn.Parameter(torch.empty(conv_width)) if cfg.conv_bias else None
        self.dt_bias = nn.Parameter(torch.empty(self.n_ssm_heads))
        self.A_log = nn.Parameter(torch.empty(self.n_ssm_heads))
        self.D = nn.Parameter(torch.empty(self.n_ssm_heads))
        self.norm_weight = nn.Parameter(torch.empty(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    @torch.no_grad()
    def reset_parameters(self, std: float, out_std: float) -> None:
        cfg = self.cfg
        init_linear(self.in_proj, std)
        init_linear(self.out_proj, out_std)
        bound = 1.0 / math.sqrt(cfg.conv_size)  # nn.Conv1d's default for a depthwise kernel
        nn.init.uniform_(self.conv_weight, -bound, bound)
        if self.conv_bias is not None:
            nn.init.uniform_(self.conv_bias, -bound, bound)
        log_dt = torch.empty_like(self.dt_bias).uniform_(math.log(cfg.dt_min), math.log(cfg.dt_max))
        dt = log_dt.exp().clamp(min=cfg.dt_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.A_log.copy_(torch.empty_like(self.A_log).uniform_(cfg.a_log_min, cfg.a_log_max).log())
        nn.init.ones_(self.D)
        nn.init.ones_(self.norm_weight)

    def _gated_norm(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """RMSNorm(y * silu(z)) over each of the G groups of the inner width, in fp32. [B, T, E]."""
        gated = y.float() * F.silu(z.float())
        grouped = gated.unflatten(-1, (self.cfg.n_groups, -1))  # [B, T, G, E/G]
        normed = grouped * torch.rsqrt(grouped.square().mean(-1, keepdim=True) + self.cfg.gate_norm_eps)
        return (normed.flatten(-2) * self.norm_weight.float()).to(y.dtype)

    def forward(self, x: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        cfg = self.cfg
        z, xbc, dt = self.in_proj(x).split(self.split, dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias)  # [B, T, NH]
        if packing is not None:  # documents become packed sequences of one long row
            xbc, dt = (t.reshape(1, B * T, *t.shape[2:]) for t in (xbc, dt))
        backend = cfg.backend
        conv_backend = "torch" if backend.startswith("torch") else backend  # the conv has one torch path
        xbc = short_conv(
            xbc,
            self.conv_weight,
            bias=self.conv_bias,
            activation="silu",
            packing=packing,
            backend=conv_backend,
        )
        rows, length = xbc.shape[:2]
        group_width = cfg.n_groups * cfg.state_size
        xs, b_in, c_in = xbc.split((self.d_inner, group_width, group_width), dim=-1)
        xs = xs.reshape(rows, length, self.n_ssm_heads, cfg.ssm_head_dim)  # [., ., NH, P]
        per_group = self.n_ssm_heads // cfg.n_groups
        b_in, c_in = (  # [., ., G, N] -> [., ., NH, N]
            t.reshape(rows, length, cfg.n_groups, cfg.state_size).repeat_interleave(per_group, dim=2)
            for t in (b_in, c_in)
        )
        g = dt * -self.A_log.float().exp()  # [., ., NH] log decay dt * A
        v = xs * dt.unsqueeze(-1).to(xs.dtype)
        y, _ = simple_gla(c_in, b_in, v, g, scale=1.0, packing=packing, backend=backend)
        y = y + xs * self.D.unsqueeze(-1).to(xs.dtype)  # D skip  # [., ., NH, P]
        y = y.reshape(B, T, self.d_inner)
        return self.out_proj(self._gated_norm(y, z))

    @staticmethod
    def _matmul_params(cfg: Mamba2Config, d_model: int) -> int:
        d_inner, heads, conv_width = _dims(cfg, d_model)
        return d_model * (d_inner + conv_width + heads) + d_inner * d_model

    @staticmethod
    def num_params(cfg: Mamba2Config, d_model: int) -> int:
        d_inner, heads, conv_width = _dims(cfg, d_model)
        conv = conv_width * (cfg.conv_size + int(cfg.conv_bias))
        return Mamba2._matmul_params(cfg, d_model) + conv + 3 * heads + d_inner  # dt_bias, A_log, D, norm

    @staticmethod
    def flops_per_token(cfg: Mamba2Config, d_model: int, seq_len: int) -> int:
        """Training FLOPs per token (forward + backward = 3 x forward, 2 FLOPs per multiply-add).

        Projections: 6 x weights. Convolution: 2 W FLOPs per channel. The chunked SSD per head and
        token, chunk C, state N, head width P: intra-chunk C B^T scores (2CN) and read (2CP), the
        inter-chunk state read (2NP) and update (2NP). Independent of seq_len: linear in time.
        """
        _, heads, conv_width = _dims(cfg, d_model)
        N, P, C = cfg.state_size, cfg.ssm_head_dim, CHUNK_SIZE
        recurrence = heads * (2 * C * N + 2 * C * P + 4 * N * P)
        return 6 * Mamba2._matmul_params(cfg, d_model) + 3 * (2 * cfg.conv_size * conv_width + recurrence)
