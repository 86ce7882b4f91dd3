"""Shingles and MinHash signatures, bit-for-bit those of datasketch (its classic `legacy` scheme).

datasketch's MinHash hashes each shingle to 32 bits and applies `num_perm` permutations
`(a * h + b) mod (2**61 - 1)`, truncated to 32 bits, in wrapping uint64 arithmetic; we use its
own permutation parameters and the same arithmetic over a whole document at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import xxhash

MERSENNE_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)
EMPTY_VALUE = int(MAX_HASH)  # the signature value of a document without shingles


def shingle_hash(shingle: bytes) -> int:
    """32-bit hash of one shingle (also the `hashfunc` to give datasketch for equal results)."""
    return xxhash.xxh32_intdigest(shingle)


_POLY = np.uint64(0x100000001B3)  # the window hash's base (FNV's 64-bit prime)


def char_shingles(text: str, n: int = 5, *, normalised: str | None = None) -> np.ndarray:
    """Distinct 32-bit hashes of the character n-grams of `normalise(text)` (uint64 array).

    The text is normalised as for exact dedup (NFKC, casefold, only letters, digits and Han
    characters), so whitespace and punctuation changes vanish and every language is shingled
    the same way, without word segmentation. One edited character changes at most `n` shingles.
    A text shorter than `n` is one shingle; a text with no letters has none. `normalised`:
    `normalise(text)` when the caller has it already (the build's exact-dedup key).
    """
    if normalised is None:
        from ..textnorm import normalise

        normalised = normalise(text)
    codes = np.frombuffer(normalised.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if not len(codes):
        return np.empty(0, dtype=np.uint64)
    width = min(n, len(codes))
    count = len(codes) - width + 1
    with np.errstate(over="ignore"):  # polynomial hash of each window, wrapping uint64
        h = np.zeros(count, dtype=np.uint64)
        for k in range(width):
            h = h * _POLY + codes[k : k + count]
        # murmur3's fmix64 spreads the polynomial hash over all bits; keep the top 32
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return distinct(h >> np.uint64(32))


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values, as `np.unique`, by one sort: numpy 2's `np.unique`
    hashes integers first, 8x slower on shingle arrays."""
    values = np.sort(values)
    keep = np.empty(len(values), dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def document_shingles(
    text: str,
    language: str,
    *,
    scheme: str = "chars",
    ngram: int = 5,
    ngram_zh: int = 2,
    ngram_chars: int = 5,
    normalised: str | None = None,
) -> np.ndarray:
    """The shingles of one document under `scheme`: "chars" (`char_shingles`), "words"
    (`shingles`) or "words+chars" (both sets, in one signature). `normalised`: as for
    `char_shingles`."""
    if scheme == "chars":
        return char_shingles(text, ngram_chars, normalised=normalised)
    if scheme == "words":
        return shingles(text, language, ngram, ngram_zh)
    if scheme == "words+chars":
        return np.union1d(
            shingles(text, language, ngram, ngram_zh),
            char_shingles(text, ngram_chars, normalised=normalised),
        )
    raise ValueError(f"shingle scheme must be 'chars', 'words' or 'words+chars', got {scheme!r}")


def shingles(text: str, language: str, n: int = 5, n_zh: int = 2) -> np.ndarray:
    """Distinct 32-bit hashes of the word n-grams of the normalised text (uint64 array).

    Chinese is cut into jieba words and shingled `n_zh` words at a time, other text into
    lower-case words, `n` at a time. A text with fewer words than that is one shingle of all
    of them; a text with none has no shingles.
    """
    from ..textnorm import resolve_language, words

    language = resolve_language(text, language)
    size = n_zh if language == "zh" else n
    tokens = words(text, language)
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    if len(tokens) <= size:
        grams = ["\x1f".join(tokens)]
    else:
        grams = ["\x1f".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]
    hashes = np.fromiter(
        (shingle_hash(g.encode()) for g in grams), dtype=np.uint64, count=len(grams)
    )
    return distinct(hashes)


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's own (a, b) for this number of permutations and seed: its legacy
    `MinHash._init_permutations`, drawn the same way without importing datasketch, whose
    package import pulls in scipy (seconds in every worker process; tested equal)."""
    gen = np.random.RandomState(seed)
    pairs = [
        (
            gen.randint(1, int(MERSENNE_PRIME), dtype=np.uint64),
            gen.randint(0, int(MERSENNE_PRIME), dtype=np.uint64),
        )
        for _ in range(num_perm)
    ]
    a, b = np.array(pairs, dtype=np.uint64).T
    return a.copy(), b.copy()


def signature(hashes: np.ndarray, num_perm: int, seed: int, chunk: int = 4096) -> np.ndarray:
    a, b = permutations(num_perm, seed)
    out = np.full(num_perm, MAX_HASH, dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 wraps, exactly as in datasketch
        for start in range(0, len(hashes), chunk):
            hv = hashes[start : start + chunk, None]
            phv = np.bitwise_and((a * hv + b) % MERSENNE_PRIME, MAX_HASH)
            np.minimum(out, phv.min(axis=0), out=out)
    return out


def minhash_signatures(
    shingle_sets: Sequence[np.ndarray], *, num_perm: int = 128, seed: int = 1, chunk: int = 2048
) -> np.ndarray:
    """(N, num_perm) uint64 signatures (values < 2**32), one row per document.

    Vectorised over documents: the shingles of all documents, end to end, are permuted
    `chunk` at a time in one preallocated (num_perm, chunk) block, updated in place, and
    reduced per document with `np.minimum.reduceat` along its rows (a document cut by a block
    edge takes the minimum of its parts). Permutations in rows make that reduction contiguous
    (~10x faster than along columns), a fixed block never pays for fresh pages, and
    `(a * h + b) mod (2**61 - 1)` is taken with shifts and adds, not an integer division.
    """
    out = np.full((len(shingle_sets), num_perm), MAX_HASH, dtype=np.uint64)
    lengths = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=len(shingle_sets))
    nonempty = np.flatnonzero(lengths)
    if not len(nonempty):
        return out
    a, b = permutations(num_perm, seed)
    a, b = a[:, None], b[:, None]
    flat = np.concatenate([np.asarray(shingle_sets[i], dtype=np.uint64) for i in nonempty])
    starts = np.concatenate([[0], np.cumsum(lengths[nonempty])[:-1]])
    block = np.empty((num_perm, chunk), dtype=np.uint64)
    scratch = np.empty((num_perm, chunk), dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 wraps, exactly as in datasketch
        for lo in range(0, len(flat), chunk):
            hi = min(lo + chunk, len(flat))
            x, q = block[:, : hi - lo], scratch[:, : hi - lo]
            np.multiply(a, flat[None, lo:hi], out=x)
            x += b
            _mod_mersenne(x, q)
            values = x.astype(np.uint32)  # the low 32 bits: & MAX_HASH
            first = int(np.searchsorted(starts, lo, side="right")) - 1
            end = int(np.searchsorted(starts, hi, side="left"))
            offsets = np.maximum(starts[first:end], lo) - lo
            rows = nonempty[first:end]
            reduced = np.minimum.reduceat(values, offsets, axis=1).T
            out[rows] = np.minimum(out[rows], reduced)
    return out


def _mod_mersenne(x: np.ndarray, scratch: np.ndarray) -> None:
    """x %= 2**61 - 1 in place, for any uint64 x: x = q * 2**61 + r gives x = q + r (mod p),
    with q + r < 2p, so one conditional subtraction finishes it."""
    np.right_shift(x, np.uint64(61), out=scratch)
    x &= MERSENNE_PRIME
    x += scratch
    np.subtract(x, MERSENNE_PRIME, out=scratch)  # wraps past 2**63 where x < p
    np.minimum(x, scratch, out=x)


def estimated_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Share of equal signature values, row by row."""
    return (left == right).mean(axis=-1)
