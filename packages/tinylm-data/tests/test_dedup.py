from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

from tinylm_data.dedup import (
    UnionFind,
    choose_bands,
    components_local,
    min_equal_values,
    minhash_signatures,
    near_dedup_local,
    shingle_hash,
    shingles,
    signature,
)
from tinylm_data.dedup.minhash import EMPTY_VALUE, estimated_jaccard

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


def test_permutations_are_datasketchs_own():
    from tinylm_data.dedup.minhash import permutations

    for num_perm, seed in ((128, 1), (16, 7)):
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="legacy").permutations
        ours = permutations(num_perm, seed)
        assert np.array_equal(ours[0], a) and np.array_equal(ours[1], b)


def test_shingles_of_short_and_empty_texts():
    assert len(shingles("just three words", "en", 5)) == 1
    assert len(shingles("  ，。 ", "zh", 5)) == 0
    assert len(shingles("今天天气很好，我们一起去公园散步吧。", "zh", 2)) > 3


def test_band_choice_is_datasketchs_own():
    from datasketch.lsh import _optimal_param

    for num_perm in (16, 100, 128, 256):
        for threshold in (0.5, 0.7, 0.8, 0.85, 0.9):
            for verified, weights in ((True, (0.05, 0.95)), (False, (0.5, 0.5))):
                expected = tuple(_optimal_param(threshold, num_perm, *weights))
                assert choose_bands(threshold, num_perm, verified=verified) == expected


def test_band_choice_favours_recall_when_candidates_are_verified():
    assert choose_bands(0.8, 128) == (16, 8)
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


def _sample_chinese_lines(min_chars: int = 300) -> list[str]:
    from importlib.resources import files

    from tinylm_data.filters import detect_language

    folder = files("tinylm_data") / "sample" / "clue"
    lines = []
    for name in sorted(p.name for p in folder.iterdir()):
        # the sample plants invalid UTF-8 on purpose: such lines are skipped here
        lines += (folder / name).read_bytes().decode("utf-8", "replace").splitlines()
    lines = [line for line in lines if "\ufffd" not in line]
    return [line for line in lines if len(line) >= min_chars and detect_language(line) == "zh"]


def _edit_chars(text: str, rng: random.Random, share: float, alphabet: str) -> str:
    chars = list(text)
    for i in rng.sample(range(len(chars)), max(1, round(share * len(chars)))):
        chars[i] = rng.choice(alphabet)
    return "".join(chars)


def test_natural_chinese_one_percent_copies_keep_high_jaccard_at_two_jieba_words(tmp_path):
    rng = random.Random(7)
    bases = _sample_chinese_lines()[:40]
    assert len(bases) >= 20
    alphabet = "".join(sorted({c for t in bases for c in t if "\u4e00" <= c <= "\u9fff"}))
    copies = [_edit_chars(t, rng, 0.01, alphabet) for t in bases]

    def jaccard(a: str, b: str, n_zh: int) -> float:
        sa, sb = (
            set(shingles(a, "zh", n_zh=n_zh).tolist()),
            set(shingles(b, "zh", n_zh=n_zh).tolist()),
        )
        return len(sa & sb) / len(sa | sb)

    default = [jaccard(a, b, 2) for a, b in zip(bases, copies, strict=True)]
    five = [jaccard(a, b, 5) for a, b in zip(bases, copies, strict=True)]
    # One changed character alters a jieba word and every shingle that holds it.
    assert min(default) > 0.84 and np.median(default) > 0.88
    assert np.median(five) < np.median(default) - 0.05
    texts = [t for pair in zip(bases, copies, strict=True) for t in pair]
    removed = _run(texts, tmp_path, language="zh")
    # every copy goes (the sample itself holds a few near copies, so a base may go as well)
    assert all(removed.get(i) == removed.get(i - 1, i - 1) for i in range(1, len(texts), 2))


def test_english_shingles_ignore_the_chinese_ngram_size():
    text = "one two three four five six seven eight nine ten"
    assert np.array_equal(shingles(text, "en", 5, n_zh=1), shingles(text, "en", 5, n_zh=9))
    assert len(shingles(text, "en", 5)) == 6
    assert len(shingles(text, "auto", 5, n_zh=2)) == 6


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


def test_verification_threshold_is_an_integer_count_with_slack():
    assert min_equal_values(0.8, 128) == 103  # ceil(102.4)
    assert min_equal_values(0.7, 10) == 7  # 0.7 * 10 is 7.000000000000001 in floats
    assert min_equal_values(0.8, 128, slack=0.05) == 96
    with pytest.raises(ValueError):
        min_equal_values(0.8, 128, slack=0.9)


def test_vectorised_signatures_equal_one_document_at_a_time():
    rng = np.random.default_rng(5)
    sets = [
        np.unique(rng.integers(0, 2**32, size=int(k), dtype=np.uint64))
        for k in (0, 1, 3, 9000, 0, 40)
    ]
    matrix = minhash_signatures(sets, num_perm=64, seed=7, chunk=100)
    assert np.array_equal(matrix, np.stack([signature(s, 64, 7) for s in sets]))
    assert (matrix[0] == EMPTY_VALUE).all() and (matrix[4] == EMPTY_VALUE).all()


def test_mersenne_remainder_without_division():
    from tinylm_data.dedup.minhash import MERSENNE_PRIME, _mod_mersenne

    p = int(MERSENNE_PRIME)
    edges = [0, 1, p - 1, p, p + 1, 2 * p - 1, 2 * p, 2 * p + 1, 7 * p, 2**61, 2**64 - 1]
    values = np.concatenate(
        [
            np.array(edges, dtype=np.uint64),
            np.random.default_rng(3).integers(0, 2**64 - 1, 10_000, dtype=np.uint64),
        ]
    )
    x = values.copy()
    _mod_mersenne(x, np.empty_like(x))
    assert np.array_equal(x, values % MERSENNE_PRIME)


def _planted(rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """A few hundred bilingual documents: near copies, lightly related pairs and splices."""
    chars = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"
    texts, languages, groups = [], [], []

    def add(text, language, group):
        texts.append(text)
        languages.append(language)
        groups.append(group)

    for i in range(70):
        base = _doc(rng, 120)
        add(" ".join(base), "en", "web")
        kind = i % 4
        if kind == 0:
            add(" ".join(_edit(base, rng, 0.005)), "en", "web" if i % 8 else "books")
        elif kind == 1:
            add(" ".join(_edit(base, rng, 0.15)), "en", "web")
        elif kind == 2:
            other = _doc(rng, 120)
            add(" ".join(other), "en", "books")
            add(" ".join(base[:60] + other[60:]), "en", "web")
        zh = "".join(rng.choice(chars) for _ in range(300))
        add(zh, "zh", "zhwiki")
        if kind in (0, 3):
            edited = list(zh)
            for j in rng.sample(range(300), 3):
                edited[j] = rng.choice(chars)
            add("".join(edited), "zh", "zhwiki")
    return texts, languages, groups


@pytest.fixture(scope="module")
def spark():
    from tinylm_data.spark_engine import spark_session

    session = spark_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_components_on_chains_and_stars(spark):
    from tinylm_data.dedup import components_spark

    edges = spark.createDataFrame(
        [(5, 4), (4, 3), (3, 2), (2, 1), (20, 21), (30, 7), (31, 7), (7, 32)],
        "src long, dst long",
    )
    roots = {r["node"]: r["root"] for r in components_spark(edges).collect()}
    # Every node but the roots, labelled with the smallest node of its component.
    assert roots == {5: 1, 4: 1, 3: 1, 2: 1, 21: 20, 30: 7, 31: 7, 32: 7}


@pytest.mark.spark
@pytest.mark.slow
def test_spark_and_local_remove_the_same_documents(spark, tmp_path):
    from tinylm_data.dedup import near_dedup_spark, near_dedup_texts_local

    texts, languages, groups = _planted(random.Random(4))
    docs = [i * 2 + 1 for i in range(len(texts))]
    frame = spark.createDataFrame(
        list(zip(docs, groups, texts, languages, strict=True)),
        "doc long, group string, text string, language string",
    ).repartition(3)
    removed = {}
    for scope in ("global", "source"):
        batches = [
            (docs[i : i + 50], groups[i : i + 50], texts[i : i + 50], languages[i : i + 50])
            for i in range(0, len(texts), 50)
        ]
        local = near_dedup_texts_local(batches, scope=scope, work_dir=tmp_path / scope)
        remote = near_dedup_spark(spark, frame, scope=scope)
        assert list(remote.removed()) == list(local.removed())
        assert (remote.candidate_pairs, remote.verified_pairs) == (
            local.candidate_pairs,
            local.verified_pairs,
        )
        removed[scope] = local.num_removed
    # 53 planted copies; a 1% character edit of random Chinese leaves Jaccard near 0.85.
    assert removed["global"] >= 45, "the near copies are found"
    # Scope "source" keeps the near copies filed under another source ("books").
    assert removed["source"] < removed["global"]
