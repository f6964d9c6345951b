"""Parameter counts and training FLOPs per token, computed analytically per layer.

    python -m models.summary NAME_OR_YAML [--seq-len 4096] [--json] [key=value ...]

Counts come from each mixer's own `num_params` / `flops_per_token` (tests check them against built
modules), so MFU in training uses the right cost for Gated DeltaNet layers, whose recurrence is
linear in time, as well as for attention, whose score term grows with the context.

FLOPs convention: training = forward + backward = 3 x forward, 2 FLOPs per multiply-add; matmuls
with weights count 6 x weights per token (the LM head included, the embedding lookup not); the
attention term counts the full context (PaLM/torchtitan/OLMo-core convention).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.config import ModelConfig, load_model_config
from models.errors import exit_on_user_error
from models.mixers import mixer_flops_per_token, mixer_params
from models.mlp import SwiGLU
from models.pretrained import load_pretrained_config


def summarize(cfg: ModelConfig, seq_len: int = 4096) -> dict:
    """Parameter counts, FLOPs per token and the resolved layer list of `cfg` at `seq_len`."""
    d, mlp = cfg.d_model, cfg.mlp_hidden
    layers = []
    for index, (name, mixer) in enumerate(zip(cfg.layer_mixer_names(), cfg.layer_mixers())):
        params = mixer_params(mixer, d) + SwiGLU.num_params(d, mlp) + 2 * d  # + two block norms
        flops = mixer_flops_per_token(mixer, d, seq_len) + SwiGLU.flops_per_token(d, mlp)
        layers.append(
            {"index": index, "mixer": name, "type": mixer.type, "norm": mixer.norm_placement,
             "params": params, "flops_per_token": flops}
        )  # fmt: skip
    embedding = cfg.vocab_size * d
    head = 0 if cfg.tie_embeddings else cfg.vocab_size * d
    non_embedding = sum(layer["params"] for layer in layers) + d  # + final norm
    flops = sum(layer["flops_per_token"] for layer in layers) + 6 * cfg.vocab_size * d
    return {
        "name": cfg.name,
        "seq_len": seq_len,
        "params": {"total": non_embedding + embedding + head, "non_embedding": non_embedding,
                   "embedding": embedding, "head": head},
        "flops_per_token": flops,
        "layers": layers,
    }  # fmt: skip


def _human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def format_summary(summary: dict) -> str:
    """A short human-readable table of `summarize`'s result."""
    p = summary["params"]
    lines = [
        f"{summary['name']}: {_human(p['total'])} parameters ({_human(p['non_embedding'])} non-embedding, "
        f"{_human(p['embedding'])} embedding, {_human(p['head'])} head)",
        f"training FLOPs/token at seq_len {summary['seq_len']}: {_human(summary['flops_per_token'])}",
        f"{'layer':>5}  {'mixer':<8} {'type':<15} {'norm':<4} {'params':>9} {'FLOPs/token':>12}",
    ]
    for layer in summary["layers"]:
        lines.append(
            f"{layer['index']:>5}  {layer['mixer']:<8} {layer['type']:<15} {layer['norm']:<4} "
            f"{_human(layer['params']):>9} {_human(layer['flops_per_token']):>12}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a name from conf/model/, a YAML file, or a pretrained directory")
    parser.add_argument("overrides", nargs="*", help="config overrides such as pattern=[gdn,attn]")
    parser.add_argument("--seq-len", type=int, default=4096, help="context length for the attention term")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        cfg = (load_pretrained_config if Path(args.model).is_dir() else load_model_config)(
            args.model, args.overrides
        )
    summary = summarize(cfg, args.seq_len)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
