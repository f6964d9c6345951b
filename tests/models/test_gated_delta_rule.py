"""Tests for models.ops.gated_delta_rule: chunked vs token-by-token, vs transformers, packed sequences.

fp32 comparisons use ATOL = 1e-5 and RTOL = 1e-4 (outputs, final states and all input gradients); the
hand-written backward is also checked with torch.autograd.gradcheck in fp64.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from models.ops import gated_delta_rule

ATOL, RTOL = 1e-5, 1e-4
BACKENDS_CPU = ("torch", "torch_recurrent")
GDR_MODULE = sys.modules["models.ops.gated_delta_rule"]  # the package re-exports the function under this name


def make_inputs(
    b: int,
    t: int,
    h: int,
    hv: int,
    k: int,
    v: int,
    *,
    l2norm: bool = True,
    h0: bool = True,
    n_state: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, torch.Tensor | None]:
    """Leaf tensors with realistic ranges: g = logsigmoid(randn) <= 0, beta in (0, 2).

    Without in-kernel l2norm the keys are unit-normalised here, as a model would, so the recurrence is stable.
    """
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, t, h, k, generator=gen)
    key = torch.randn(b, t, h, k, generator=gen)
    if not l2norm:
        key = F.normalize(key, dim=-1)
    inputs = {
        "q": q,
        "k": key,
        "v": torch.randn(b, t, hv, v, generator=gen),
        "g": F.logsigmoid(torch.randn(b, t, hv, generator=gen)),
        "beta": 2 * torch.rand(b, t, hv, generator=gen),
        "initial_state": torch.randn(n_state or b, hv, k, v, generator=gen) if h0 else None,
    }
    return {
        name: None if x is None else x.to(device=device, dtype=dtype).requires_grad_()
        for name, x in inputs.items()
    }


def run(inputs: dict, backend: str, seed: int = 1, **kwargs) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Forward with final state, backward of a random projection; returns o, state and input grads."""
    for x in inputs.values():
        if x is not None:
            x.grad = None
    o, state = gated_delta_rule(
        inputs["q"],
        inputs["k"],
        inputs["v"],
        inputs["g"],
        inputs["beta"],
        initial_state=inputs["initial_state"],
        output_final_state=True,
        backend=backend,
        **kwargs,
    )
    gen = torch.Generator().manual_seed(seed)
    d_o = torch.randn(o.shape, generator=gen).to(o)
    d_state = torch.randn(state.shape, generator=gen).to(state)
    ((o * d_o).sum() + (state * d_state).sum()).backward()
    grads = [None if x is None else x.grad.clone() for x in inputs.values()]
    return o.detach(), state.detach(), grads


def assert_close_all(actual: tuple, expected: tuple, atol: float = ATOL, rtol: float = RTOL) -> None:
    """Compare (o, state, grads) tuples from run()."""
    torch.testing.assert_close(actual[0], expected[0], atol=atol, rtol=rtol)
    torch.testing.assert_close(actual[1], expected[1], atol=atol, rtol=rtol)
    for name, a, e in zip(("q", "k", "v", "g", "beta", "initial_state"), actual[2], expected[2]):
        if e is None:
            assert a is None, name
        else:
            torch.testing.assert_close(a, e, atol=atol, rtol=rtol, msg=lambda m, n=name: f"grad {n}: {m}")


@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("l2norm", [False, True], ids=["no_l2", "l2"])
@pytest.mark.parametrize(
    ("b", "t", "h", "hv", "k", "v"),
    [
        pytest.param(*shape, id="B{}-T{}-H{}-HV{}-K{}-V{}".format(*shape))
        for shape in [
            (2, 1, 2, 2, 16, 32),
            (2, 63, 2, 4, 16, 32),
            (1, 100, 2, 2, 32, 64),
            (2, 257, 1, 3, 16, 32),
        ]
    ],
)
def test_chunk_matches_recurrent(b, t, h, hv, k, v, l2norm, h0):
    """Chunked backend equals the token loop: outputs, final state, and gradients of every input."""
    inputs = make_inputs(b, t, h, hv, k, v, l2norm=l2norm, h0=h0)
    expected = run(inputs, "torch_recurrent", use_qk_l2norm=l2norm)
    assert_close_all(run(inputs, "torch", use_qk_l2norm=l2norm), expected)


@pytest.mark.parametrize("t", [1, 11, 16])
def test_gradcheck_fp64(t, monkeypatch):
    """The hand-derived backward is exact: fp64 gradcheck over several chunks (chunk size 4 here)."""
    monkeypatch.setattr(GDR_MODULE, "CHUNK_SIZE", 4)
    inputs = make_inputs(1, t, 1, 2, 3, 2, l2norm=True, dtype=torch.float64)
    names = list(inputs)

    def fn(*xs):
        kw = dict(zip(names, xs))
        o, state = gated_delta_rule(
            kw["q"],
            kw["k"],
            kw["v"],
            kw["g"],
            kw["beta"],
            initial_state=kw["initial_state"],
            output_final_state=True,
            use_qk_l2norm=True,
            backend="torch",
        )
        return o, state

    assert torch.autograd.gradcheck(fn, tuple(inputs.values()), atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize(
    ("b", "t", "h", "hv"), [(2, 100, 2, 2), (1, 130, 2, 4)], ids=["B2-T100-H2", "B1-T130-HV4"]
)
def test_matches_transformers(b, t, h, hv, h0):
    """Same outputs and final states as transformers' qwen3_next torch reference implementations."""
    from transformers.models.qwen3_next.modeling_qwen3_next import torch_chunk_gated_delta_rule as peer_chunk
    from transformers.models.qwen3_next.modeling_qwen3_next import (
        torch_recurrent_gated_delta_rule as peer_recurrent,
    )

    x = make_inputs(b, t, h, hv, 32, 48, h0=h0)
    args = (x["q"], x["k"], x["v"], x["g"], x["beta"])
    state_kw = {"initial_state": x["initial_state"], "output_final_state": True}
    with torch.no_grad():
        ours = [gated_delta_rule(*args, **state_kw, use_qk_l2norm=True, backend=be) for be in BACKENDS_CPU]
        peers = [fn(*args, **state_kw, use_qk_l2norm_in_kernel=True) for fn in (peer_chunk, peer_recurrent)]
    for o, state in ours:
        for peer_o, peer_state in peers:
            torch.testing.assert_close(o, peer_o, atol=ATOL, rtol=RTOL)
            torch.testing.assert_close(state, peer_state, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("h0", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("backend", BACKENDS_CPU)
def test_packed_equals_separate(backend, h0):
    """cu_seqlens: each packed sequence behaves exactly as if run alone from its own initial state."""
    lengths = [37, 1, 100, 64]
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    packed = make_inputs(1, sum(lengths), 2, 4, 16, 32, h0=h0, n_state=len(lengths))
    o, state, grads = run(packed, backend, use_qk_l2norm=True, cu_seqlens=cu_seqlens)

    gen = torch.Generator().manual_seed(1)
    d_o = torch.randn(o.shape, generator=gen)
    d_state = torch.randn(state.shape, generator=gen)
    for n, (s, e) in enumerate(zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist())):
        single = {
            name: None
            if x is None
            else x.detach()[n : n + 1]
            if name == "initial_state"
            else x.detach()[:, s:e]
            for name, x in packed.items()
        }
        single = {name: None if x is None else x.clone().requires_grad_() for name, x in single.items()}
        o_n, state_n = gated_delta_rule(
            single["q"],
            single["k"],
            single["v"],
            single["g"],
            single["beta"],
            use_qk_l2norm=True,
            initial_state=single["initial_state"],
            output_final_state=True,
            backend="torch_recurrent",
        )
        ((o_n * d_o[:, s:e]).sum() + (state_n * d_state[n : n + 1]).sum()).backward()
        torch.testing.assert_close(o[:, s:e], o_n.detach(), atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(state[n : n + 1], state_n.detach(), atol=ATOL, rtol=RTOL)
        for name, grad in zip(packed, grads):
            if packed[name] is None:
                continue
            part = grad[n : n + 1] if name == "initial_state" else grad[:, s:e]
            torch.testing.assert_close(part, single[name].grad, atol=ATOL, rtol=RTOL)


def test_dtypes_and_defaults():
    """Output keeps the input dtype, the state is fp32, and no state is returned unless asked."""
    x = make_inputs(1, 20, 2, 2, 16, 32, h0=False, dtype=torch.bfloat16)
    o, state = gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"], use_qk_l2norm=True)
    assert o.dtype == torch.bfloat16 and o.shape == (1, 20, 2, 32) and state is None
    _, state = gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"], output_final_state=True)
    assert state.dtype == torch.float32 and state.shape == (1, 2, 16, 32)


def test_explicit_scale():
    """A custom scale multiplies the output linearly (the state itself does not depend on q)."""
    x = make_inputs(1, 70, 2, 2, 16, 32, h0=True)
    args = (x["q"], x["k"], x["v"], x["g"], x["beta"])
    with torch.no_grad():
        o1, _ = gated_delta_rule(*args, scale=1.0, initial_state=x["initial_state"], backend="torch")
        o2, _ = gated_delta_rule(*args, scale=0.5, initial_state=x["initial_state"], backend="torch")
    torch.testing.assert_close(o2, 0.5 * o1, atol=ATOL, rtol=RTOL)


def _bad_cases():
    q = torch.zeros(1, 8, 2, 16)
    v = torch.zeros(1, 8, 4, 32)
    gb = torch.zeros(1, 8, 4)
    ok = {"q": q, "k": q, "v": v, "g": gb, "beta": gb}
    return [
        ("rank", {**ok, "q": q[0], "k": q[0]}, {}, "must both be \\[B, T, H, K\\]"),
        (
            "groups",
            {**ok, "v": torch.zeros(1, 8, 3, 32), "g": gb[..., :3], "beta": gb[..., :3]},
            {},
            "multiple",
        ),
        ("g_shape", {**ok, "g": gb[..., :2]}, {}, "g \\(1, 8, 2\\)"),
        ("backend", ok, {"backend": "cuda"}, "backend='cuda' is unknown"),
        ("fla_cpu", ok, {"backend": "fla"}, "needs CUDA"),
        (
            "cu_batch",
            {
                **ok,
                "q": q.expand(2, -1, -1, -1),
                "k": q.expand(2, -1, -1, -1),
                "v": v.expand(2, -1, -1, -1),
                "g": gb.expand(2, -1, -1),
                "beta": gb.expand(2, -1, -1),
            },
            {"cu_seqlens": torch.tensor([0, 8])},
            "B == 1",
        ),
        ("cu_end", ok, {"cu_seqlens": torch.tensor([0, 5])}, "rise from 0 to T=8"),
        ("h0_shape", ok, {"initial_state": torch.zeros(1, 2, 16, 32)}, "one state per sequence"),
    ]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"), [c[1:] for c in _bad_cases()], ids=[c[0] for c in _bad_cases()]
)
def test_bad_input_raises(args, kwargs, match):
    """Bad shapes, packing or backend names raise ValueError naming the value and the fix."""
    with pytest.raises(ValueError, match=match):
        gated_delta_rule(args["q"], args["k"], args["v"], args["g"], args["beta"], **kwargs)


def test_cpu_path_imports_no_triton():
    """backend='auto' on CPU never imports triton or fla.ops (checked in a fresh interpreter)."""
    code = (
        "import sys, torch\n"
        "from models.ops import gated_delta_rule, short_conv\n"
        "x = torch.randn(1, 5, 2, 8)\n"
        "gated_delta_rule(x, x, x, -torch.rand(1, 5, 2), torch.rand(1, 5, 2))\n"
        "short_conv(torch.randn(1, 5, 3), torch.randn(3, 4))\n"
        "bad = [m for m in sys.modules if m.startswith(('triton', 'fla.ops', 'fla.modules'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 1e-2), (torch.bfloat16, 5e-2)], ids=["fp32", "bf16"]
)
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_fla_matches_torch(dtype, tol, packed):
    """fla's Triton kernel and our torch backend agree on CUDA (outputs, final states, gradients)."""
    lengths = [37, 1, 100, 64] if packed else None
    cu_seqlens = (
        None if lengths is None else torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()]).cuda()
    )
    b, t, n = (1, sum(lengths), len(lengths)) if packed else (2, 200, 2)
    x = make_inputs(b, t, 2, 4, 64, 64, h0=True, n_state=n, dtype=dtype, device="cuda")
    fla = run(x, "fla", use_qk_l2norm=True, cu_seqlens=cu_seqlens)
    ours = run(x, "torch", use_qk_l2norm=True, cu_seqlens=cu_seqlens)
    torch.testing.assert_close(fla[0].float(), ours[0].float(), atol=tol, rtol=tol)
    torch.testing.assert_close(fla[1].float(), ours[1].float(), atol=tol, rtol=tol)
    for a, e in zip(fla[2], ours[2]):
        scale = e.float().abs().max().clamp(min=1.0)
        torch.testing.assert_close(a.float() / scale, e.float() / scale, atol=tol, rtol=tol)
