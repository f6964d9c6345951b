"""`manifest.json`: what a prepared dataset directory holds, and the checks made before using it.

The manifest lists every shard (file, split, source, domain, token and document counts, sha256),
the tokenizer (sha256 of `tokenizer.json`, vocab size, EOS id), the dtype, the sources with their
reading statistics and mixture weights, and the split settings. `fingerprint` hashes the parts that
define the token stream; the sampler keys its shuffles on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.errors import UserError

FORMAT = "hybridzoo-tokens/1"
SPLITS = ("train", "validation")


@dataclass
class Shard:
    """One token file: raw little-endian ids, whole documents, each ending with EOS."""

    file: str  # relative to the dataset directory
    split: str
    source: str
    domain: str
    tokens: int
    documents: int
    sha256: str


@dataclass
class Manifest:
    name: str
    dtype: str
    tokenizer: dict  # file, sha256, vocab_size, eos_id, eos_token, source
    sources: dict  # name -> {type, domain, weight, spec, stats, train/validation counts}
    shards: list[Shard]
    split: dict  # seed, validation_fraction, run_length
    input_fingerprint: str
    format: str = FORMAT
    byte_order: str = "little"
    created_with: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.tokenizer["eos_id"])

    @property
    def fingerprint(self) -> str:
        """sha256 over the dtype, the tokenizer and every shard: equal iff the token data is equal."""
        content = {
            "dtype": self.dtype,
            "tokenizer": self.tokenizer["sha256"],
            "shards": [asdict(s) for s in self.shards],
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def select(
        self, split: str, sources: list[str] | None = None, domains: list[str] | None = None
    ) -> list[Shard]:
        """Shards of one split, optionally restricted to some sources or domains (in manifest order)."""
        if split not in SPLITS:
            raise UserError(f"split '{split}' is unknown; use one of {', '.join(SPLITS)}.")
        for wanted, known in (
            (sources, self.sources),
            (domains, {s["domain"] for s in self.sources.values()}),
        ):
            unknown = sorted(set(wanted or ()) - set(known))
            if unknown:
                raise UserError(f"{unknown} not in this dataset (it has {sorted(known)}); pick from those.")
        return [
            s
            for s in self.shards
            if s.split == split
            and (sources is None or s.source in sources)
            and (domains is None or s.domain in domains)
        ]

    def save(self, directory: Path) -> None:
        data = asdict(self) | {"fingerprint": self.fingerprint}
        (directory / "manifest.json").write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / "manifest.json"
        if not path.is_file():
            raise UserError(f"{path} does not exist; prepare the data first with `python -m train.prepare`.")
        try:
            data = json.loads(path.read_text())
            data.pop("fingerprint", None)
            if data.get("format") != FORMAT:
                raise KeyError("format")
            data["shards"] = [Shard(**s) for s in data["shards"]]
            return cls(**data)
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(
                f"{path} is not a {FORMAT} manifest ({e}); re-run `python -m train.prepare`."
            ) from None


def verify_shards(directory: str | Path, manifest: Manifest, full: bool = False) -> None:
    """Check the shards against the manifest: sizes and final EOS always; sha256 and EOS counts if `full`."""
    directory = Path(directory)
    itemsize = np.dtype(manifest.dtype).itemsize
    for shard in manifest.shards:
        path = directory / shard.file
        if not path.is_file():
            raise UserError(
                f"shard {path} listed in manifest.json is missing; re-run `python -m train.prepare`."
            )
        size = path.stat().st_size
        if size != shard.tokens * itemsize:
            raise UserError(
                f"shard {path} has {size} bytes, but manifest.json says {shard.tokens} {manifest.dtype} "
                "tokens; the data is corrupt or from another run: re-run `python -m train.prepare`."
            )
        tokens = np.memmap(path, dtype=np.dtype(manifest.dtype).newbyteorder("<"), mode="r")
        eos_count = int(np.count_nonzero(tokens == manifest.eos_id)) if full else None
        if tokens[-1] != manifest.eos_id or (full and eos_count != shard.documents):
            raise UserError(
                f"shard {path} does not end its documents with EOS {manifest.eos_id} as manifest.json says."
            )
        if full and _sha256(path) != shard.sha256:
            raise UserError(
                f"shard {path} does not match its sha256 in manifest.json; re-run `python -m train.prepare`."
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def check_tokenizer_compatible(
    manifest: Manifest, vocab_size: int, tokenizer_sha256: str | None = None, eos_id: int | None = None
) -> None:
    """Refuse a model whose embedding cannot index the dataset's ids or whose tokenizer differs.

    A model vocab larger than the tokenizer is fine (padded vocabularies, e.g. 100352 for dolma2's
    100278 ids); a smaller one is an error, as are a different tokenizer file or EOS id when given.
    """
    if vocab_size < manifest.vocab_size:
        raise UserError(
            f"model vocab_size {vocab_size} is smaller than the dataset tokenizer's "
            f"{manifest.vocab_size} ids ({manifest.name}); set model.vocab_size >= {manifest.vocab_size} "
            "or prepare the data with the model's tokenizer."
        )
    if tokenizer_sha256 is not None and tokenizer_sha256 != manifest.tokenizer["sha256"]:
        raise UserError(
            f"the model's tokenizer (sha256 {tokenizer_sha256[:12]}) is not the dataset's "
            f"({manifest.tokenizer['sha256'][:12]}, {manifest.name}); use data prepared with the model's "
            "tokenizer."
        )
    if eos_id is not None and eos_id != manifest.eos_id:
        raise UserError(
            f"model EOS id {eos_id} differs from the dataset's {manifest.eos_id}; use matching data."
        )


# How many times the data's vocabulary a model's may be before it counts as sized for other data.
OVERSIZED_VOCAB_FACTOR = 4


def check_vocab_not_oversized(vocab_size: int, data_vocab_size: int, data_name: str) -> None:
    """Refuse a model vocabulary more than `OVERSIZED_VOCAB_FACTOR` times the data's.

    Padding is normal (100352 rows for dolma2's 100278 ids), but a 100k-vocab model on the 8192-id
    demo corpus is a recipe run on the wrong data: it trains without complaint, on a toy corpus
    repeated for thousands of epochs. The trainer skips this check with `trainer.allow_vocab_mismatch`.
    """
    if vocab_size > OVERSIZED_VOCAB_FACTOR * data_vocab_size:
        raise UserError(
            f"model.vocab_size={vocab_size} is {vocab_size / data_vocab_size:.0f}x the {data_vocab_size} ids of "
            f"the data ({data_name}), so the model was sized for another tokenizer: choose data prepared with the "
            "model's tokenizer (data=NAME), or set trainer.allow_vocab_mismatch=true to train on this data anyway."
        )
