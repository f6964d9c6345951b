"""Benchmark our chunked simple_gla and gla ops against peer pure-PyTorch implementations, same run.

Forward + backward in fp32 on the same inputs in the same process (CPU), interleaved (see
`bench_gdn.time_fwd_bwd`), B=1, H=4:
- simple_gla (K = N = 128 state, V = P = 64, Mamba-2's shapes) vs transformers' pure-torch Mamba-2
  SSD `mamba2_chunk_scan` (chunk 64), fed the same x, dt, A, B, C; T in {512, 2048, 8192}.
- gla (K = 64, V = 128) vs fla's naive recurrent GLA `naive_recurrent_gla` (pure torch, a token
  loop: fla ships no pure-torch chunked GLA); T in {512, 2048}.
Prints median times, the ratio ours/peer and the max abs difference of the outputs. With CUDA it also
times fla's `chunk_simple_gla` / `chunk_gla` against our torch backend.

    PYTHONPATH=. .venv/bin/python scripts/bench_mixers.py [--repeats 5] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_gdn import time_fwd_bwd

from models.ops import gla, simple_gla

B, H = 1, 4
SSD_N, SSD_P, GLA_K, GLA_V = 128, 64, 64, 128
SSD_LENGTHS, GLA_LENGTHS = (512, 2048, 8192), (512, 2048)


def ssd_inputs(t: int, device: str) -> list[torch.Tensor]:
    """x [B,T,H,P], dt [B,T,H] (after softplus), A [H] (< 0), B and C [B,T,1,N] (one group)."""
    gen = torch.Generator().manual_seed(t)
    x = torch.randn(B, t, H, SSD_P, generator=gen)
    dt = F.softplus(torch.randn(B, t, H, generator=gen) - 3)
    a = -torch.linspace(1, 16, H)
    b_in, c_in = (torch.randn(B, t, 1, SSD_N, generator=gen) for _ in range(2))
    return [z.to(device).requires_grad_() for z in (x, dt, a, b_in, c_in)]


def gla_inputs(t: int, device: str) -> list[torch.Tensor]:
    """q, k [B,T,H,K], v [B,T,H,V], g = logsigmoid(.)/16 [B,T,H,K]."""
    gen = torch.Generator().manual_seed(t)
    q, k = (torch.randn(B, t, H, GLA_K, generator=gen) for _ in range(2))
    v = torch.randn(B, t, H, GLA_V, generator=gen)
    g = F.logsigmoid(torch.randn(B, t, H, GLA_K, generator=gen)) / 16
    return [z.to(device).requires_grad_() for z in (q, k, v, g)]


def ours_ssd(backend: str):
    def fn(x, dt, a, b_in, c_in):
        heads = [z.expand(-1, -1, H, -1) for z in (c_in, b_in)]
        return simple_gla(*heads, x * dt.unsqueeze(-1), dt * a, scale=1.0, backend=backend)[0]

    return fn


def ours_gla(backend: str):
    return lambda q, k, v, g: gla(q, k, v, g, backend=backend)[0]


def fla_naive_recurrent_gla():
    """fla's pure-torch GLA reference, loaded from its file (importing fla.ops needs triton)."""
    import fla

    spec = importlib.util.spec_from_file_location(
        "fla_gla_naive", Path(fla.__file__).parent / "ops/gla/naive.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda q, k, v, g: module.naive_recurrent_gla(q, k, v, g)[0]


def compare(label: str, lengths, make, fns: dict, repeats: int, warmup: int, device: str) -> list[dict]:
    """Time each pair of functions per length; print one markdown row per length."""
    rows = []
    (a_name, _), (b_name, _) = fns.items()
    for t in lengths:
        res = time_fwd_bwd(fns, make(t, device), repeats, warmup)
        (a_ms, o_a), (b_ms, o_b) = res[a_name], res[b_name]
        diff = (o_a.float() - o_b.float()).abs().max().item()
        rows.append({"op": label, "T": t, f"{a_name}_ms": a_ms, f"{b_name}_ms": b_ms, "ratio": a_ms / b_ms,
                     "max_diff": diff})  # fmt: skip
        print(
            f"| {label:10s} | {t:5d} | {a_ms:9.1f} | {b_ms:9.1f} | {a_ms / b_ms:5.2f} | {diff:.1e} |",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per case (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", type=str, default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    from transformers.models.mamba2.modeling_mamba2 import mamba2_chunk_scan

    def peer_ssd(x, dt, a, b_in, c_in):
        return mamba2_chunk_scan(x, dt, a, b_in, c_in, chunk_size=64)

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads={torch.get_num_threads()}"
    )
    print(f"fwd+bwd fp32, B={B} H={H}, median of {args.repeats} after {args.warmup} warm-up")
    print("| op         |     T | ours (ms) | peer (ms) | ours/peer | max abs diff |")
    print("|------------|------:|----------:|----------:|------:|--------:|")
    r, w = args.repeats, args.warmup
    result = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    result["cpu"] = compare("simple_gla", SSD_LENGTHS, ssd_inputs, {"ours": ours_ssd("torch"), "peer": peer_ssd},
                            r, w, "cpu")  # fmt: skip
    result["cpu"] += compare("gla", GLA_LENGTHS, gla_inputs, {"ours": ours_gla("torch"),
                             "peer": fla_naive_recurrent_gla()}, r, w, "cpu")  # fmt: skip
    if torch.cuda.is_available():
        print(f"\nCUDA ({torch.cuda.get_device_name()}): fla backend vs our torch backend, fwd+bwd")
        print("| op         |     T |  fla (ms) | torch (ms) | fla/torch | max abs diff |")
        print("|------------|------:|----------:|----------:|------:|--------:|")
        result["cuda"] = compare("simple_gla", SSD_LENGTHS, ssd_inputs, {"fla": ours_ssd("fla"),
                                 "torch": ours_ssd("torch")}, r, w, "cuda")  # fmt: skip
        result["cuda"] += compare("gla", SSD_LENGTHS, gla_inputs, {"fla": ours_gla("fla"), "torch": ours_gla("torch")},
                                  r, w, "cuda")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
