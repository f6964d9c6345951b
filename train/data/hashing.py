"""Counter-based hashing for splits and shuffles that never depend on a library's RNG streams.

NumPy does not promise that a seeded `Generator` yields the same stream in every version; the
split and the batch order must stay fixed for a dataset and seed, so they hash counters instead.
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective, well-mixed 64-bit hash of each value."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def key64(*parts: object) -> np.uint64:
    """A 64-bit key derived from any printable parts (seed, names, fingerprints, counters)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


def permutation(n: int, key: np.uint64) -> np.ndarray:
    """A pseudo-random permutation of range(n), fixed by `key`: order by hashed counters."""
    return np.argsort(splitmix64(np.arange(n, dtype=np.uint64) ^ key)).astype(np.int64)
