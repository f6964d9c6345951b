"""Mamba-2, GLA and DeltaNet mixers: causality, packed documents, backends, counts, init, bad configs."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
import torch
import torch.nn.functional as F

from models import ModelConfig, build_model
from models.mixers import (
    AttentionConfig,
    DeltaNetConfig,
    GatedDeltaNetConfig,
    GLAConfig,
    Mamba2Config,
    build_mixer,
    mixer_flops_per_token,
    mixer_params,
)

VOCAB = 97
MIXERS = {
    "attn": AttentionConfig(),
    "gdn": GatedDeltaNetConfig(norm_placement="pre"),
    "m2": Mamba2Config(norm_placement="pre", ssm_head_dim=16, state_size=16, a_log_min=1.0),
    "m2g": Mamba2Config(ssm_head_dim=8, state_size=8, n_groups=2, conv_bias=False, expand=1.5),
    "gla": GLAConfig(norm_placement="pre"),
    "gla_nogate": GLAConfig(output_gate=False, gate_low_rank_dim=4),
    "dn": DeltaNetConfig(norm_placement="pre", allow_neg_eigval=False),
    "dnv": DeltaNetConfig(n_heads=2, n_v_heads=4, output_gate=False),
}
NEW = ["m2", "m2g", "gla", "gla_nogate", "dn", "dnv"]


def tiny(pattern: list[str], backend: str = "torch", **overrides) -> ModelConfig:
    mixers = {  # every recurrent kind has a backend; attention has none
        name: dataclasses.replace(m, backend=backend) if hasattr(m, "backend") else m
        for name, m in MIXERS.items()
        if name in pattern
    }
    return ModelConfig(
        vocab_size=VOCAB, d_model=64, n_layers=len(pattern), n_heads=4, mlp_hidden=128,
        mixers=mixers, pattern=pattern, init_std=0.1, **overrides,
    )  # fmt: skip


PATTERNS = {name: [name] for name in NEW} | {
    "mamba2_hybrid": ["m2", "m2", "m2", "attn"],
    "mixed": ["m2", "gla", "dn", "gdn", "attn", "m2g"],
}


@pytest.mark.parametrize("name", PATTERNS)
def test_future_tokens_never_change_past_logits(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny(PATTERNS[name])).eval()
    x = torch.randint(0, VOCAB, (2, 80))
    changed = x.clone()
    changed[:, 30:] = torch.randint(0, VOCAB, (2, 50))
    with torch.no_grad():
        a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, :30], b[:, :30], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(a[:, 30:], b[:, 30:], atol=1e-3)


@pytest.mark.parametrize("name", PATTERNS)
def test_doc_ids_match_running_each_document_alone(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny(PATTERNS[name])).eval()
    lengths = [[11, 59], [70], [1, 25, 44]]
    rows = [torch.randint(0, VOCAB, (sum(row),)) for row in lengths]
    docs = [torch.cat([torch.full((n,), i) for i, n in enumerate(row)]) for row in lengths]
    x, doc_ids = torch.stack(rows), torch.stack(docs)
    with torch.no_grad():
        packed = model(x, doc_ids=doc_ids)
        for r, row in enumerate(lengths):
            start = 0
            for n in row:
                alone = model(x[r : r + 1, start : start + n])
                torch.testing.assert_close(packed[r, start : start + n], alone[0], atol=2e-5, rtol=1e-4)
                start += n


def test_chunked_and_recurrent_backends_agree_in_the_model() -> None:
    torch.manual_seed(0)
    chunked = build_model(tiny(PATTERNS["mixed"]))
    recurrent = build_model(tiny(PATTERNS["mixed"], backend="torch_recurrent"))
    recurrent.load_state_dict(chunked.state_dict())
    x = torch.randint(0, VOCAB, (2, 70))
    a, b = chunked(x), recurrent(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    a.square().mean().backward()
    b.square().mean().backward()
    for (name, p), q in zip(chunked.named_parameters(), recurrent.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-3, msg=name)


def test_every_parameter_gets_a_gradient() -> None:
    model = build_model(tiny(PATTERNS["mixed"] + ["gla_nogate", "dnv"]))
    model(torch.randint(0, VOCAB, (2, 33))).logsumexp(-1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", NEW)
def test_param_count_matches_the_built_module_and_flops_are_linear(name: str) -> None:
    cfg = tiny([name])
    m = cfg.mixer_for(name)
    built = sum(p.numel() for p in build_mixer(m, cfg.d_model, cfg.norm_eps).parameters())
    assert mixer_params(m, cfg.d_model) == built
    short, long = (mixer_flops_per_token(m, cfg.d_model, t) for t in (1024, 8192))
    assert short == long > 6 * built  # linear in time; more than the weight matmuls alone


def test_mamba2_flops_by_hand() -> None:
    m = Mamba2Config(expand=2, state_size=16, ssm_head_dim=32, n_groups=1, conv_size=4)
    d = 64  # E = 128, NH = 4, conv channels 128 + 32 = 160
    matmul = 64 * (128 + 160 + 4) + 128 * 64
    ssd = 4 * (2 * 64 * 16 + 2 * 64 * 32 + 4 * 16 * 32)
    assert mixer_flops_per_token(m, d, 100) == 6 * matmul + 3 * (2 * 4 * 160 + ssd)


def test_mamba2_init_follows_the_reference_ranges() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=256, n_layers=1, n_heads=4, mlp_hidden=64, vocab_size=VOCAB, pattern=["m2"],
                      mixers={"m2": Mamba2Config(ssm_head_dim=4, a_log_min=1.0, a_log_max=16.0)})  # fmt: skip
    mixer = build_model(cfg).blocks[0].mixer
    a, dt = mixer.A_log.exp(), F.softplus(mixer.dt_bias)
    assert mixer.A_log.numel() == 128 and a.min() >= 1.0 and a.max() <= 16.0 and a.std() > 3
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 0.1 * (1 + 1e-4)
    assert abs(dt.log().mean().item() - (math.log(1e-3) + math.log(0.1)) / 2) < 0.5  # log-uniform
    assert torch.equal(mixer.D, torch.ones_like(mixer.D))


def test_gla_forget_gate_is_logsigmoid_over_tau() -> None:
    torch.manual_seed(0)
    cfg = tiny(["gla"])
    mixer = build_model(cfg).blocks[0].mixer
    x = torch.randn(1, 5, 64)
    with torch.no_grad():
        g = F.logsigmoid(mixer.gk_up(mixer.gk_down(x))) / 16.0
    assert g.max() < 0 and g.min() > -math.log(2) / 16 - 0.1  # near-identity decays at init


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expand": 1.3}, "d_inner = expand * d_model = 83.2 must be a whole multiple of ssm_head_dim"),
        ({"n_groups": 3}, "n_groups=3 must divide the 8 SSM heads"),
        ({"state_size": 0}, "state_size=0"),
    ],
)
def test_bad_mamba2_configs_are_one_line(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        ModelConfig(d_model=64, n_layers=1, n_heads=4, pattern=["m"],
                    mixers={"m": Mamba2Config(ssm_head_dim=16, **overrides)})  # fmt: skip
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_v_heads": 8}, "gla has no field 'n_v_heads' (a field of gated_deltanet, deltanet)"),
        ({"gate_low_rank_dim": 0}, "must both be positive"),
    ],
)
def test_bad_gla_configs_are_one_line(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        ModelConfig(
            d_model=64, n_layers=1, n_heads=4, pattern=["m"], mixers={"m": {"type": "gla", **overrides}}
        )
    assert "\n" not in str(error.value)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("name", ["m2", "gla", "dn"])
def test_fla_backend_matches_torch_in_the_model(name: str) -> None:
    """On CUDA each mixer gives the same logits and gradients through fla's kernels as through ours."""
    torch.manual_seed(0)
    pattern = [name, "attn"]
    ours = build_model(tiny(pattern, backend="torch"), device="cuda")
    fla = build_model(tiny(pattern, backend="fla"), device="cuda")
    fla.load_state_dict(ours.state_dict())
    x = torch.randint(0, VOCAB, (2, 300), device="cuda")
    doc_ids = (torch.arange(300, device="cuda") >= 123).long().expand(2, -1)
    a, b = ours(x, doc_ids=doc_ids), fla(x, doc_ids=doc_ids)
    torch.testing.assert_close(b, a, atol=1e-2, rtol=1e-2)  # fla may use TF32 dots
    a.square().mean().backward()
    b.square().mean().backward()
    for (n, p), q in zip(ours.named_parameters(), fla.parameters()):
        scale = p.grad.abs().max().clamp(min=1e-6)
        torch.testing.assert_close(q.grad / scale, p.grad / scale, atol=1e-2, rtol=1e-2, msg=n)
