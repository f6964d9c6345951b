"""Tests for models.ops.simple_gla and models.ops.gla: chunked vs token-by-token, packing, strong decays.

fp32 comparisons use ATOL = 1e-5 and RTOL = 1e-4 (outputs, final states and all input gradients); the
chunked path is also checked with torch.autograd.gradcheck in fp64 over several (sub-)chunks.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.ops import gla, simple_gla

ATOL, RTOL = 1e-5, 1e-4
OPS = {"simple_gla": simple_gla, "gla": gla}
GLA_MODULE = sys.modules["models.ops.gated_linear_attention"]
NAMES = ("q", "k", "v", "g", "initial_state")


def make_inputs(
    op, b, t, h, k, v, *, h0=True, n_state=None, decay=1.0, dtype=torch.float32, device="cpu", seed=0
):
    """Leaf tensors; g = decay * logsigmoid(randn) <= 0, one per head (simple_gla) or per key (gla)."""
    gen = torch.Generator().manual_seed(seed)
    g_shape = (b, t, h) if op == "simple_gla" else (b, t, h, k)
    inputs = {
        "q": torch.randn(b, t, h, k, generator=gen),
        "k": torch.randn(b, t, h, k, generator=gen) * k**-0.5,
        "v": torch.randn(b, t, h, v, generator=gen),
        "g": decay * F.logsigmoid(torch.randn(*g_shape, generator=gen)),
        "initial_state": torch.randn(n_state or b, h, k, v, generator=gen) if h0 else None,
    }
    return {
        n: None if x is None else x.to(device=device, dtype=dtype).requires_grad_() for n, x in inputs.items()
    }


def run(op: str, inputs: dict, backend: str, seed: int = 1, **kwargs):
    """Forward with final state, backward of a random projection; returns o, state and input grads."""
    for x in inputs.values():
        if x is not None:
            x.grad = None
    o, state = OPS[op](
        inputs["q"], inputs["k"], inputs["v"], inputs["g"], initial_state=inputs["initial_state"],
        output_final_state=True, backend=backend, **kwargs,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    d_o, d_state = (
        torch.randn(o.shape, generator=gen).to(o),
        torch.randn(state.shape, generator=gen).to(state),
    )
    ((o * d_o).sum() + (state * d_state).sum()).backward()
    return o.detach(), state.detach(), [None if x is None else x.grad.clone() for x in inputs.values()]


def assert_close_all(actual, expected, atol=ATOL, rtol=RTOL) -> None:
    torch.testing.assert_close(actual[0], expected[0], atol=atol, rtol=rtol)
    torch.testing.assert_close(actual[1], expected[1], atol=atol, rtol=rtol)
    for name, a, e in zip(NAMES, actual[2], expected[2]):
        if e is None:
            assert a is None, name
        else:
            torch.testing.assert_close(a, e, atol=atol, rtol=rtol, msg=lambda m, n=name: f"grad {n}: {m}")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize(
    ("b", "t", "h", "k", "v"),
    [(2, 1, 2, 16, 32), (2, 63, 2, 16, 32), (1, 100, 2, 32, 16), (2, 257, 1, 16, 8)],
    ids=lambda s: str(s),
)
def test_chunk_matches_recurrent(op, b, t, h, k, v, h0):
    """Chunked backend equals the token loop: outputs, final state, and gradients of every input."""
    inputs = make_inputs(op, b, t, h, k, v, h0=h0)
    assert_close_all(run(op, inputs, "torch"), run(op, inputs, "torch_recurrent"))


@pytest.mark.parametrize("op", OPS)
def test_strong_decay_stays_exact(op):
    """Log decays of -30 per step (-1900 per chunk) neither overflow nor lose the exact result."""
    inputs = make_inputs(op, 1, 100, 2, 16, 8, decay=30.0)
    with torch.no_grad():
        inputs["g"][..., 40:45] = 0.0  # a few near-identity steps so long-range terms are not all zero
    chunked = run(op, inputs, "torch")
    assert all(torch.isfinite(x).all() for x in (chunked[0], chunked[1], *chunked[2][:4]))
    assert_close_all(chunked, run(op, inputs, "torch_recurrent"))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("t", [1, 11, 17])
def test_gradcheck_fp64(op, t, monkeypatch):
    """Gradients are exact: fp64 gradcheck over several chunks and sub-chunks (chunk 8, sub-chunk 4)."""
    monkeypatch.setattr(GLA_MODULE, "CHUNK_SIZE", 8)
    monkeypatch.setattr(GLA_MODULE, "SUB_CHUNK", 4)
    inputs = make_inputs(op, 1, t, 2, 3, 2, dtype=torch.float64)

    def fn(q, k, v, g, h0):
        return OPS[op](q, k, v, g, initial_state=h0, output_final_state=True, backend="torch")

    assert torch.autograd.gradcheck(fn, tuple(inputs.values()), atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("backend", ["torch", "torch_recurrent"])
def test_packed_equals_separate(op, backend, h0):
    """cu_seqlens: each packed sequence behaves exactly as if run alone from its own initial state."""
    lengths = [37, 1, 100, 64]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    packed = make_inputs(op, 1, sum(lengths), 2, 16, 8, h0=h0, n_state=len(lengths))
    o, state, grads = run(op, packed, backend, cu_seqlens=cu)
    gen = torch.Generator().manual_seed(1)
    d_o, d_state = torch.randn(o.shape, generator=gen), torch.randn(state.shape, generator=gen)
    for n, (s, e) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        single = {
            name: None
            if x is None
            else (x.detach()[n : n + 1] if name == "initial_state" else x.detach()[:, s:e])
            for name, x in packed.items()
        }
        single = {name: None if x is None else x.clone().requires_grad_() for name, x in single.items()}
        o_n, state_n = OPS[op](
            single["q"], single["k"], single["v"], single["g"], initial_state=single["initial_state"],
            output_final_state=True, backend="torch_recurrent",
        )  # fmt: skip
        ((o_n * d_o[:, s:e]).sum() + (state_n * d_state[n : n + 1]).sum()).backward()
        torch.testing.assert_close(o[:, s:e], o_n.detach(), atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(state[n : n + 1], state_n.detach(), atol=ATOL, rtol=RTOL)
        for name, grad in zip(NAMES, grads):
            if packed[name] is not None:
                part = grad[n : n + 1] if name == "initial_state" else grad[:, s:e]
                torch.testing.assert_close(part, single[name].grad, atol=ATOL, rtol=RTOL)


def _fla_naive_recurrent_gla():
    """fla's pure-torch GLA reference, loaded from its file (fla.ops itself needs triton)."""
    import fla

    path = Path(fla.__file__).parent / "ops" / "gla" / "naive.py"
    spec = importlib.util.spec_from_file_location("fla_gla_naive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.naive_recurrent_gla


@pytest.mark.parametrize("op", OPS)
def test_matches_fla_naive_reference(op):
    """Same outputs and final state as fla's naive recurrent GLA (simple GLA: g broadcast over K)."""
    x = make_inputs(op, 2, 70, 2, 16, 8)
    g = x["g"] if op == "gla" else x["g"].unsqueeze(-1).expand(-1, -1, -1, 16)
    with torch.no_grad():
        peer_o, peer_state = _fla_naive_recurrent_gla()(x["q"], x["k"], x["v"], g, x["initial_state"], True)
        o, state = OPS[op](x["q"], x["k"], x["v"], x["g"], initial_state=x["initial_state"],
                           output_final_state=True, backend="torch")  # fmt: skip
    torch.testing.assert_close(o, peer_o, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(state, peer_state, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("op", OPS)
def test_dtypes_scale_and_defaults(op):
    """Output keeps the input dtype, the state is fp32, no state unless asked; scale is linear."""
    x = make_inputs(op, 1, 20, 2, 16, 32, h0=False, dtype=torch.bfloat16)
    o, state = OPS[op](x["q"], x["k"], x["v"], x["g"])
    assert o.dtype == torch.bfloat16 and o.shape == (1, 20, 2, 32) and state is None
    _, state = OPS[op](x["q"], x["k"], x["v"], x["g"], output_final_state=True)
    assert state.dtype == torch.float32 and state.shape == (1, 2, 16, 32)
    y = make_inputs(op, 1, 70, 2, 16, 8)
    with torch.no_grad():
        o1, _ = OPS[op](y["q"], y["k"], y["v"], y["g"], scale=1.0, initial_state=y["initial_state"])
        o2, _ = OPS[op](y["q"], y["k"], y["v"], y["g"], scale=0.5, initial_state=y["initial_state"])
    torch.testing.assert_close(o2, 0.5 * o1, atol=ATOL, rtol=RTOL)


def _bad_cases(op):
    q, v = torch.zeros(1, 8, 2, 16), torch.zeros(1, 8, 2, 32)
    g = torch.zeros(1, 8, 2) if op == "simple_gla" else torch.zeros(1, 8, 2, 16)
    ok = {"q": q, "k": q, "v": v, "g": g}
    return [
        ("rank", {**ok, "q": q[0], "k": q[0]}, {}, "must both be \\[B, T, H, K\\]"),
        ("v_heads", {**ok, "v": torch.zeros(1, 8, 4, 32)}, {}, "v \\(1, 8, 4, 32\\) must be"),
        ("g_shape", {**ok, "g": g[:, :, :1]}, {}, "g \\(1, 8, 1"),
        ("backend", ok, {"backend": "cuda"}, "backend='cuda' is unknown"),
        ("fla_cpu", ok, {"backend": "fla"}, "needs CUDA"),
        ("cu_end", ok, {"cu_seqlens": torch.tensor([0, 5])}, "rise from 0 to T=8"),
        ("h0_shape", ok, {"initial_state": torch.zeros(1, 2, 16, 8)}, "one state per sequence"),
    ]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", range(7), ids=[c[0] for c in _bad_cases("gla")])
def test_bad_input_raises(op, case):
    """Bad shapes, packing or backend names raise one ValueError line naming the value and the fix."""
    _, args, kwargs, match = _bad_cases(op)[case]
    with pytest.raises(ValueError, match=match) as error:
        OPS[op](args["q"], args["k"], args["v"], args["g"], **kwargs)
    assert "\n" not in str(error.value)


def test_cpu_path_imports_no_triton():
    """backend='auto' on CPU never imports triton or fla.ops (checked in a fresh interpreter)."""
    code = (
        "import sys, torch\n"
        "from models.ops import gla, simple_gla\n"
        "x = torch.randn(1, 5, 2, 8)\n"
        "simple_gla(x, x, x, -torch.rand(1, 5, 2))\n"
        "gla(x, x, x, -torch.rand(1, 5, 2, 8))\n"
        "bad = [m for m in sys.modules if m.startswith(('triton', 'fla.ops', 'fla.modules'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-2), (torch.bfloat16, 5e-2)], ids=["fp32", "bf16"]
)
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_fla_matches_torch(op, dtype, tol, packed):
    """fla's chunk_simple_gla / chunk_gla and our torch backend agree on CUDA (outputs, states, grads)."""
    lengths = [37, 1, 100, 64] if packed else None
    cu = None if lengths is None else torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()]).cuda()
    b, t, n = (1, sum(lengths), len(lengths)) if packed else (2, 200, 2)
    x = make_inputs(op, b, t, 2, 64, 64, n_state=n, dtype=dtype, device="cuda")
    fla, ours = run(op, x, "fla", cu_seqlens=cu), run(op, x, "torch", cu_seqlens=cu)
    torch.testing.assert_close(fla[0].float(), ours[0].float(), atol=tol, rtol=tol)
    torch.testing.assert_close(fla[1].float(), ours[1].float(), atol=tol, rtol=tol)
    for a, e in zip(fla[2], ours[2]):
        scale = e.float().abs().max().clamp(min=1.0)
        torch.testing.assert_close(a.float() / scale, e.float() / scale, atol=tol, rtol=tol)


def test_simple_gla_is_transformers_mamba2_ssd():
    """simple_gla(q=C, k=B, v=dt*x, g=dt*A, scale=1) equals transformers' pure-torch Mamba-2 chunk scan."""
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    from transformers.models.mamba2.modeling_mamba2 import mamba2_chunk_scan

    gen = torch.Generator().manual_seed(0)
    b, t, h, p, groups, n = 2, 100, 4, 16, 2, 8
    x, dt = torch.randn(b, t, h, p, generator=gen), F.softplus(torch.randn(b, t, h, generator=gen))
    a = -4 * torch.rand(h, generator=gen)
    b_in, c_in = torch.randn(b, t, groups, n, generator=gen), torch.randn(b, t, groups, n, generator=gen)
    peer = mamba2_chunk_scan(x, dt, a, b_in, c_in, chunk_size=64)
    heads = [z.repeat_interleave(h // groups, dim=2) for z in (c_in, b_in)]
    o, _ = simple_gla(*heads, x * dt.unsqueeze(-1), dt * a, scale=1.0, backend="torch")
    torch.testing.assert_close(o, peer, atol=1e-4, rtol=1e-4)
