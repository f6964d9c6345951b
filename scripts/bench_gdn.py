"""Benchmark our chunked gated delta rule against transformers' pure-PyTorch chunked version.

Forward + backward in fp32 on the same inputs in the same process (CPU): B=1, H=4, K=64, V=128 and
T in {512, 2048, 8192}, use_qk_l2norm on for both. Prints median times, the ratio ours/peer and the
max abs difference of the outputs. With CUDA it also times fla's kernel, our torch backend and SDPA
causal attention (head dim 128) at the same shapes.

    .venv/bin/python scripts/bench_gdn.py [--repeats 5] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from models.errors import exit_on_user_error
from models.ops import gated_delta_rule

B, H, K, V = 1, 4, 64, 128
LENGTHS = (512, 2048, 8192)


def make_inputs(t: int, device: str) -> list[torch.Tensor]:
    """Random q, k, v, g (logsigmoid), beta (sigmoid) in fp32 that require grad."""
    gen = torch.Generator().manual_seed(t)
    q = torch.randn(B, t, H, K, generator=gen)
    k = torch.randn(B, t, H, K, generator=gen)
    v = torch.randn(B, t, H, V, generator=gen)
    g = F.logsigmoid(torch.randn(B, t, H, generator=gen))
    beta = torch.randn(B, t, H, generator=gen).sigmoid()
    return [x.to(device).requires_grad_() for x in (q, k, v, g, beta)]


def time_fwd_bwd(
    fns: dict[str, Callable], inputs: list[torch.Tensor], repeats: int, warmup: int
) -> dict[str, tuple[float, torch.Tensor]]:
    """Median wall time (ms) of forward + backward of fn(*inputs).sum() for each fn, and its last output.

    The functions run interleaved (one of each per repeat) so that load from other processes on a
    shared machine affects all of them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    outputs: dict[str, torch.Tensor] = {}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            for x in inputs:
                x.grad = None
            if inputs[0].is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            o = fn(*inputs)
            o.float().sum().backward()
            if inputs[0].is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
            outputs[name] = o.detach()
    return {name: (statistics.median(times[name]), outputs[name]) for name in fns}


def cpu_rows(repeats: int, warmup: int) -> list[dict]:
    """Ours (backend='torch') vs transformers' torch_chunk_gated_delta_rule on CPU."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    from transformers.models.qwen3_next.modeling_qwen3_next import torch_chunk_gated_delta_rule

    def ours(q, k, v, g, beta):
        return gated_delta_rule(q, k, v, g, beta, use_qk_l2norm=True, backend="torch")[0]

    def peer(q, k, v, g, beta):
        return torch_chunk_gated_delta_rule(q, k, v, g, beta, use_qk_l2norm_in_kernel=True)[0]

    rows = []
    for t in LENGTHS:
        inputs = make_inputs(t, "cpu")
        res = time_fwd_bwd({"ours": ours, "peer": peer}, inputs, repeats, warmup)
        (ours_ms, o_ours), (peer_ms, o_peer) = res["ours"], res["peer"]
        diff = (o_ours - o_peer).abs().max().item()
        rows.append(
            {"T": t, "ours_ms": ours_ms, "peer_ms": peer_ms, "ratio": ours_ms / peer_ms, "max_diff": diff}
        )
        print(
            f"| {t:5d} | {ours_ms:9.1f} | {peer_ms:9.1f} | {ours_ms / peer_ms:5.2f} | {diff:.1e} |",
            flush=True,
        )
    return rows


def cuda_rows(repeats: int, warmup: int) -> list[dict]:
    """fla backend vs our torch backend vs SDPA causal attention (head dim 128) on CUDA."""

    def run(backend):
        return lambda q, k, v, g, beta: gated_delta_rule(
            q, k, v, g, beta, use_qk_l2norm=True, backend=backend
        )[0]

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    rows = []
    for t in LENGTHS:
        inputs = make_inputs(t, "cuda")
        res = time_fwd_bwd({"fla": run("fla"), "torch": run("torch")}, inputs, repeats, warmup)
        attn_inputs = [torch.randn(B, H, t, V, device="cuda", requires_grad=True) for _ in range(3)]
        sdpa_ms = time_fwd_bwd({"sdpa": sdpa}, attn_inputs, repeats, warmup)["sdpa"][0]
        fla_ms, torch_ms = res["fla"][0], res["torch"][0]
        rows.append({"T": t, "fla_ms": fla_ms, "torch_ms": torch_ms, "sdpa_ms": sdpa_ms})
        print(f"| {t:5d} | {fla_ms:8.2f} | {torch_ms:9.2f} | {sdpa_ms:8.2f} |", flush=True)
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

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads={torch.get_num_threads()}"
    )
    print(
        f"fwd+bwd fp32, B={B} H={H} K={K} V={V}, use_qk_l2norm, median of {args.repeats} after {args.warmup} warm-up"
    )
    print("|     T |  ours (ms) |  peer (ms) | ours/peer | max abs diff |")
    print("|------:|----------:|----------:|------:|--------:|")
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_rows(args.repeats, args.warmup),
    }
    if torch.cuda.is_available():
        print(f"\nCUDA ({torch.cuda.get_device_name()}): fla vs torch backend vs SDPA causal, fwd+bwd")
        print("|     T | fla (ms) | torch (ms) | sdpa (ms) |")
        print("|------:|---------:|----------:|---------:|")
        result["cuda"] = cuda_rows(args.repeats, args.warmup)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    with exit_on_user_error():
        main()
