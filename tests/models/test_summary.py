"""`models.summary`: FLOP formulas on hand-computed cases and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from models import build_model, load_model_config, save_pretrained
from models.mixers import AttentionConfig, mixer_flops_per_token
from models.summary import summarize


def test_attention_flops_by_hand() -> None:
    m = AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=16, window=None)
    d, T = 64, 100
    projections = 64 * 64 * 2 + 64 * 32 * 2  # q, o: d x H*Dh; k, v: d x G*Dh
    assert mixer_flops_per_token(m, d, T) == 6 * projections + 12 * 4 * 16 * T
    windowed = AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=16, window=10)
    assert mixer_flops_per_token(windowed, d, T) == 6 * projections + 12 * 4 * 16 * 10


def test_gdn_flops_are_linear_in_time_and_attention_is_not() -> None:
    cfg = load_model_config("hybrid_1b")
    short, long = summarize(cfg, 1024)["layers"], summarize(cfg, 8192)["layers"]
    for a, b in zip(short, long):
        if a["type"] == "gated_deltanet":
            assert a["flops_per_token"] == b["flops_per_token"]
        else:
            assert b["flops_per_token"] > a["flops_per_token"]


def test_transformer_1b_flops_match_6n_plus_attention() -> None:
    cfg = load_model_config("transformer_1b")
    s = summarize(cfg, 4096)
    n_matmul = (
        s["params"]["non_embedding"] - cfg.n_layers * (2 * 2048 + 2 * 2048) - 2048 + s["params"]["head"]
    )
    assert s["flops_per_token"] == 6 * n_matmul + 12 * 16 * 16 * 128 * 4096


def test_cli_table_json_and_error() -> None:
    run = [sys.executable, "-m", "models.summary"]
    table = subprocess.run([*run, "tiny_hybrid"], capture_output=True, text=True, check=True).stdout
    assert "non-embedding" in table and "gated_deltanet" in table and "attention" in table
    out = subprocess.run(
        [*run, "tiny_hybrid", "pattern=[gdn,attn]", "--json"], capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout)
    assert [layer["mixer"] for layer in data["layers"]] == ["gdn", "attn", "gdn", "attn"]
    bad = subprocess.run([*run, "tiny_hybrid", "pattern=[gdn,attn,attn]"], capture_output=True, text=True)
    assert bad.returncode == 1 and "does not divide" in bad.stderr and bad.stderr.count("\n") == 1
    unknown = subprocess.run([*run, "no_such_model"], capture_output=True, text=True)
    line = unknown.stderr.strip()
    assert unknown.returncode == 1 and line.startswith("error: ") and "\n" not in line, unknown.stderr
    assert "conf/model/" in line and len(line) < 200


def test_cli_reads_a_pretrained_dir(tmp_path) -> None:
    save_pretrained(build_model(load_model_config("tiny_hybrid")), tmp_path / "m")
    out = subprocess.run(
        [sys.executable, "-m", "models.summary", str(tmp_path / "m"), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["name"] == "tiny_hybrid"
