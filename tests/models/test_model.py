"""The LM: causality of every mixer and mix, document masking, the pretrained format."""

from __future__ import annotations

import pytest
import torch

from models import ModelConfig, build_model, load_model_config, load_pretrained, save_pretrained
from models.mixers import AttentionConfig, GatedDeltaNetConfig

VOCAB = 97


def tiny(pattern: list[str], **mixer_overrides) -> ModelConfig:
    mixers = {
        "attn": AttentionConfig(),
        "swa": AttentionConfig(window=5),
        "gqa": AttentionConfig(n_kv_heads=2, rope=False),
        "gdn": GatedDeltaNetConfig(norm_placement="pre", backend="torch"),
        "gva": GatedDeltaNetConfig(n_heads=2, n_v_heads=4, allow_neg_eigval=False),
    }
    used = {name: m for name, m in mixers.items() if name in pattern}  # every declared mixer must be used
    return ModelConfig(
        vocab_size=VOCAB, d_model=64, n_layers=len(pattern), n_heads=4, mlp_hidden=128,
        mixers=used, pattern=pattern, init_std=0.1, **mixer_overrides,
    )  # fmt: skip


PATTERNS = {
    "attn": ["attn"],
    "swa": ["swa"],
    "gqa": ["gqa"],
    "gdn": ["gdn"],
    "gva": ["gva"],
    "hybrid": ["gdn", "gdn", "gdn", "attn"],
    "olmo3": ["swa", "swa", "swa", "attn"],
    "mixed": ["gva", "swa", "gdn", "gqa"],
}


@pytest.mark.parametrize("name", PATTERNS)
def test_future_tokens_never_change_past_logits(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny(PATTERNS[name])).eval()
    x = torch.randint(0, VOCAB, (2, 40))
    t = 17
    changed = x.clone()
    changed[:, t + 1 :] = torch.randint(0, VOCAB, (2, 40 - t - 1))
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5)
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :], atol=1e-3)  # the change is visible later


@pytest.mark.parametrize("name", ["attn", "swa", "gdn", "gva", "mixed"])
def test_doc_ids_match_running_each_document_alone(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny(PATTERNS[name])).eval()
    lengths = [[11, 29], [40], [1, 25, 14]]
    rows, doc_rows = [], []
    for row in lengths:
        rows.append(torch.randint(0, VOCAB, (sum(row),)))
        doc_rows.append(torch.cat([torch.full((n,), i) for i, n in enumerate(row)]))
    x, doc_ids = torch.stack(rows), torch.stack(doc_rows)
    with torch.no_grad():
        packed = model(x, doc_ids=doc_ids)
        for r, row in enumerate(lengths):
            start = 0
            for n in row:
                alone = model(x[r : r + 1, start : start + n])
                torch.testing.assert_close(packed[r, start : start + n], alone[0], atol=2e-5, rtol=1e-4)
                start += n


def test_gdn_torch_and_recurrent_backends_agree_in_the_model() -> None:
    torch.manual_seed(0)
    chunked = build_model(tiny(["gdn", "attn"]))
    recurrent = build_model(tiny(["gdn", "attn"]))
    recurrent.load_state_dict(chunked.state_dict())
    for block in recurrent.blocks:
        if hasattr(block.mixer, "cfg"):
            block.mixer.cfg.backend = "torch_recurrent"
    x = torch.randint(0, VOCAB, (2, 70))
    a, b = chunked(x), recurrent(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    a.square().mean().backward()
    b.square().mean().backward()
    for (name, p), q in zip(chunked.named_parameters(), recurrent.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-3, msg=name)


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_norm_placement_changes_the_function(placement: str) -> None:
    torch.manual_seed(0)
    cfg = tiny(["attn"], norm_placement=placement)
    model = build_model(cfg)
    x = torch.randint(0, VOCAB, (1, 8))
    block = model.blocks[0]
    h = model.embed(x)
    if placement == "pre":
        expected = h + block.mixer(block.mixer_norm(h))
        expected = expected + block.mlp(block.mlp_norm(expected))
    else:
        expected = h + block.mixer_norm(block.mixer(h))
        expected = expected + block.mlp_norm(block.mlp(expected))
    torch.testing.assert_close(block(h), expected)


def test_every_parameter_gets_a_gradient() -> None:
    model = build_model(tiny(PATTERNS["mixed"]))
    model(torch.randint(0, VOCAB, (2, 33))).logsumexp(-1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_output_projections_are_depth_scaled() -> None:
    model = build_model(load_model_config("tiny_hybrid"))
    std = model.cfg.init_std
    assert model.blocks[0].mlp.up_proj.weight.std().item() == pytest.approx(std, rel=0.1)
    assert model.blocks[0].mlp.down_proj.weight.std().item() == pytest.approx(std / (2 * 4) ** 0.5, rel=0.1)


@pytest.mark.parametrize("name", ["tiny_hybrid", "tiny_rnn", "tiny_transformer"])
def test_pretrained_round_trip(tmp_path, name: str) -> None:
    model = build_model(load_model_config(name, ["tie_embeddings=true"] if name == "tiny_rnn" else []))
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    save_pretrained(model, str(tmp_path / "m"), tokenizer_file=str(tokenizer))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.yaml",
        "model.safetensors",
        "tokenizer.json",
    ]
    loaded = load_pretrained(tmp_path / "m")
    x = torch.randint(0, model.cfg.vocab_size, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(model(x), loaded(x), atol=0, rtol=0)
    assert loaded.cfg == model.cfg
    assert load_pretrained(tmp_path / "m", dtype=torch.bfloat16).embed.weight.dtype == torch.bfloat16


def test_failed_save_leaves_the_old_checkpoint_and_no_debris(tmp_path, monkeypatch) -> None:
    import models.pretrained as pretrained

    model = build_model(load_model_config("tiny_transformer"))
    save_pretrained(model, str(tmp_path / "m"))
    before = (tmp_path / "m" / "model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pretrained, "save_model", broken)
    with pytest.raises(OSError):
        save_pretrained(build_model(load_model_config("tiny_transformer")), str(tmp_path / "m"))
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_loading_a_non_pretrained_dir_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="models.hf import"):
        load_pretrained(tmp_path)
