"""The dataset's tokenizer: loaded from a file or the HF cache, or trained as byte-level BPE.

The `tokenizer.json` stored beside the shards is the dataset's tokenizer; its sha256 (of the file's
bytes) is the identity the trainer checks, so files are copied byte for byte, never re-serialised.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from models.errors import UserError
from train.data.config import TokenizerConfig


def special_token_ids(tokenizer: Tokenizer) -> set[int]:
    """The ids of a tokenizer's special tokens (`<|endoftext|>`, padding, ...): never drawn at random."""
    return {i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}


def non_special_ids(vocab_size: int, special_ids: Iterable[int]) -> np.ndarray:
    """Ids 0..vocab_size-1 without `special_ids`, sorted: what random-token sequences draw from
    (the induction probe, random repeat spans)."""
    return np.setdiff1d(np.arange(vocab_size), np.fromiter(special_ids, dtype=np.int64, count=-1))


@dataclass(frozen=True)
class TokenizerInfo:
    """What the manifest records about the tokenizer."""

    sha256: str
    vocab_size: int  # one more than the largest id the tokenizer can produce
    eos_id: int
    eos_token: str
    source: str

    def dtype(self, requested: str) -> str:
        """The shard dtype: `requested`, or for `auto` the smallest that holds every id."""
        needed = "uint16" if self.vocab_size <= 1 << 16 else "uint32"
        if requested == "auto":
            return needed
        if requested == "uint16" and needed == "uint32":
            raise UserError(
                f"the tokenizer has ids up to {self.vocab_size - 1}, which do not fit data.dtype=uint16; "
                "use data.dtype=uint32 or auto."
            )
        return str(requested)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tokenizer_input(cfg: TokenizerConfig) -> str | None:
    """The path of a given tokenizer file (for the input fingerprint); `None` when trained."""
    if cfg.kind == "file":
        if not cfg.path or not Path(cfg.path).is_file():
            raise UserError(f"data.tokenizer.path={cfg.path} is not a file; point it at a tokenizer.json.")
        return str(Path(cfg.path).resolve())
    if cfg.kind == "hf":
        if not cfg.name:
            raise UserError(
                "data.tokenizer.kind=hf needs data.tokenizer.name, a hub id such as allenai/dolma2-tokenizer."
            )
        try:
            from huggingface_hub import hf_hub_download

            return hf_hub_download(cfg.name, "tokenizer.json")
        except Exception as e:
            raise UserError(
                f"tokenizer '{cfg.name}' is neither in the local Hugging Face cache nor downloadable "
                f"({type(e).__name__}); fetch it once or use data.tokenizer.kind=file."
            ) from None
    return None


def train_bpe(cfg: TokenizerConfig, texts: Iterable[str]) -> Tokenizer:
    """Byte-level BPE (GPT-2 style pre-tokenisation, no normaliser: decoding gives the text back)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=[cfg.eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def install_tokenizer(cfg: TokenizerConfig, out_path: Path, train_texts: Iterator[str] | None) -> Tokenizer:
    """Write the dataset's `tokenizer.json` to `out_path` and return the loaded tokenizer."""
    given = tokenizer_input(cfg)
    if given is not None:
        shutil.copyfile(given, out_path)
    else:
        assert train_texts is not None
        train_bpe(cfg, train_texts).save(str(out_path))
    return Tokenizer.from_file(str(out_path))


def describe(tok: Tokenizer, path: Path, cfg: TokenizerConfig) -> TokenizerInfo:
    eos_id = tok.token_to_id(cfg.eos_token)
    if eos_id is None:
        raise UserError(
            f"the tokenizer has no token '{cfg.eos_token}'; set data.tokenizer.eos_token to its EOS token."
        )
    vocab_size = max(tok.get_vocab(with_added_tokens=True).values()) + 1
    source = {"train": f"trained byte-level BPE, vocab {cfg.vocab_size}", "file": cfg.path, "hf": cfg.name}[
        cfg.kind
    ]
    return TokenizerInfo(file_sha256(path), vocab_size, eos_id, cfg.eos_token, str(source))


def encode_documents(
    tok: Tokenizer, texts: list[str], eos_id: int, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of `texts`, each followed by EOS, flattened, and the per-document lengths (with EOS)."""
    docs = [[*e.ids, eos_id] for e in tok.encode_batch(texts, add_special_tokens=False)]
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    return np.fromiter(chain.from_iterable(docs), dtype=dtype, count=int(lengths.sum())), lengths
