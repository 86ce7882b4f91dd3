from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

from tinylm_data.dedup import (
    UnionFind,
    choose_bands,
    components_local,
    minhash_signatures,
    near_dedup_local,
    shingle_hash,
    shingles,
    signature,
)
from tinylm_data.dedup.minhash import estimated_jaccard

WORDS = [f"w{i}" for i in range(5000)]


def _doc(rng: random.Random, n: int = 300) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def _edit(words: list[str], rng: random.Random, share: float) -> list[str]:
    out = list(words)
    for i in rng.sample(range(len(out)), int(share * len(out))):
        out[i] = rng.choice(WORDS)
    return out


def _jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = set(shingles(a, "en", n).tolist()), set(shingles(b, "en", n).tolist())
    return len(sa & sb) / len(sa | sb)


def test_signatures_equal_datasketch():
    text = "the quick brown fox jumps over the lazy dog again and again until dawn"
    hashes = shingles(text, "en", 3)
    ours = signature(hashes, 128, seed=1)
    theirs = MinHash(num_perm=128, seed=1, hashfunc=shingle_hash, scheme="legacy")
    grams = text.split()
    for i in range(len(grams) - 2):
        theirs.update("\x1f".join(grams[i : i + 3]).encode())
    assert np.array_equal(ours, theirs.hashvalues)


def test_shingles_of_short_and_empty_texts():
    assert len(shingles("just three words", "en", 5)) == 1
    assert len(shingles("  ，。 ", "zh", 5)) == 0
    assert len(shingles("今天天气很好，我们一起去公园散步吧。", "zh", 2)) > 3


def test_band_choice_favours_recall_when_candidates_are_verified():
    assert choose_bands(0.8, 128) == (14, 9)
    b, r = choose_bands(0.8, 128, verified=False)
    assert b * r <= 128 and (b, r) == (9, 13)
    for threshold in (0.5, 0.7, 0.9):
        b, r = choose_bands(threshold, 256)
        assert b * r <= 256 and b >= 1 and r >= 1


def _run(texts: list[str], tmp_path, language="en", groups=None, **kw):
    sets = [shingles(t, language, 5) for t in texts]
    sigs = minhash_signatures(sets, num_perm=128, seed=1)
    docs = np.arange(len(texts), dtype=np.int64) * 3  # gaps, as after exact dedup
    grp = np.zeros(len(texts), dtype=np.int64) if groups is None else np.asarray(groups)
    batches = [(docs[i : i + 7], grp[i : i + 7], sigs[i : i + 7]) for i in range(0, len(texts), 7)]
    result = near_dedup_local(iter(batches), work_dir=tmp_path / "nd", **kw)
    return {doc // 3: kept // 3 for doc, _, kept in result.removed()}


def test_pairs_on_either_side_of_the_threshold(tmp_path):
    rng = random.Random(0)
    texts, expect_dup, expect_distinct = [], [], []
    for i in range(40):
        base = _doc(rng)
        texts.append(" ".join(base))
        if i % 2 == 0:
            texts.append(" ".join(_edit(base, rng, 0.005)))  # Jaccard ~0.95+
            expect_dup.append(len(texts) - 1)
        else:
            texts.append(" ".join(_edit(base, rng, 0.12)))  # Jaccard ~0.4
            expect_distinct.append(len(texts) - 1)
    assert all(_jaccard(texts[i - 1], texts[i]) > 0.9 for i in expect_dup)
    assert all(_jaccard(texts[i - 1], texts[i]) < 0.6 for i in expect_distinct)
    removed = _run(texts, tmp_path)
    assert removed == {i: i - 1 for i in expect_dup}


def test_chinese_near_copies_with_one_percent_character_edits(tmp_path):
    rng = random.Random(1)
    chars = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"
    texts = []
    for _ in range(10):
        base = "".join(rng.choice(chars) for _ in range(600))
        texts.append(base)
        edited = list(base)
        for i in rng.sample(range(600), 6):
            edited[i] = rng.choice(chars)
        texts.append("".join(edited))
    removed = _run(texts, tmp_path, language="zh")
    assert len(removed) >= 9 and all(kept == doc - 1 for doc, kept in removed.items())


def test_scope_by_group_and_deterministic_survivor(tmp_path):
    rng = random.Random(2)
    base = " ".join(_doc(rng))
    texts = [base, base + " extra", base + " more words"]
    assert _run(texts, tmp_path) == {1: 0, 2: 0}, "the first document survives"
    assert _run(texts, tmp_path, groups=[0, 1, 1]) == {2: 1}, "groups never match each other"


def test_empty_and_single_document_inputs(tmp_path):
    assert _run([], tmp_path) == {}
    assert _run(["only one document here with some words"], tmp_path) == {}


def test_union_find_on_chains_and_stars():
    chain = components_local(np.array([5, 4, 3, 2]), np.array([4, 3, 2, 1]))
    assert set(chain.values()) == {1}
    star = components_local(np.array([10, 11, 12, 20]), np.array([7, 7, 7, 21]))
    assert star == {10: 7, 11: 7, 12: 7, 7: 7, 20: 20, 21: 20}
    uf = UnionFind()
    uf.union(3, 9)
    assert uf.find(3) == uf.find(9) and uf.labels() == {3: 3, 9: 3}


def test_estimated_jaccard_tracks_true_jaccard():
    rng = random.Random(3)
    a = _doc(rng, 2000)
    b = _edit(a, rng, 0.02)
    sa, sb = shingles(" ".join(a), "en", 5), shingles(" ".join(b), "en", 5)
    est = estimated_jaccard(signature(sa, 256, 1), signature(sb, 256, 1))
    true = len(np.intersect1d(sa, sb)) / len(np.union1d(sa, sb))
    assert abs(est - true) < 0.08


@pytest.mark.spark
@pytest.mark.slow
def test_spark_components_and_near_dedup_match_local(tmp_path):
    from tinylm_data.dedup import components_spark, near_dedup_spark_signatures
    from tinylm_data.spark_engine import spark_session

    spark = spark_session("local[2]")
    try:
        edges = spark.createDataFrame(
            [(5, 4), (4, 3), (3, 2), (2, 1), (20, 21), (30, 7), (31, 7)], "src long, dst long"
        )
        roots = {r["node"]: r["root"] for r in components_spark(edges).collect()}
        assert roots == {5: 1, 4: 1, 3: 1, 2: 1, 21: 20, 30: 7, 31: 7}
        rng = random.Random(4)
        texts = []
        for i in range(30):
            base = _doc(rng, 200)
            texts += [" ".join(base), " ".join(_edit(base, rng, 0.01 if i % 2 else 0.2))]
        local = _run(texts, tmp_path)
        sigs = minhash_signatures([shingles(t, "en", 5) for t in texts], num_perm=128, seed=1)
        frame = spark.createDataFrame(
            [(i * 3, 0, [int(v) for v in sig]) for i, sig in enumerate(sigs)],
            "doc long, grp long, signature array<long>",
        )
        result = near_dedup_spark_signatures(spark, frame, threshold=0.8, num_perm=128)
        assert {doc // 3: kept // 3 for doc, _, kept in result.removed()} == local
        assert len(local) == 15
    finally:
        spark.stop()
