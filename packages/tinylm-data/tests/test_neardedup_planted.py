"""Near dedup on planted copies: every kind of edit in each language is found, splices and
unrelated documents never are; the rejects name the kept document in typed columns."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.dedup import char_shingles, document_shingles, near_dedup_texts_local
from tinylm_data.dedup.planted import KINDS, plant, variant

ENGLISH = [
    "The city council met on Tuesday evening to debate the proposed budget for the coming year. "
    "Residents filled the hall, many of them worried about the plan to close two branch "
    "libraries on the east side of town. The mayor argued that the savings would pay for "
    "repairs to roads and bridges that have been neglected for more than a decade, while "
    "several councillors said the libraries were among the few public spaces left where "
    "children could study after school. After three hours of comments the vote was postponed "
    "until next month, when an independent review of the library system is due to be published.",
    "Sourdough bread needs only flour, water and salt, but it asks for patience. A starter is "
    "a living culture of wild yeast and bacteria that has to be fed every day, and it takes "
    "about a week before it is strong enough to raise a loaf. Mix the dough the night before, "
    "fold it every half hour for the first two hours, then leave it in a cool place overnight. "
    "In the morning shape it gently, let it rest in a floured basket, and bake it in a very hot "
    "covered pot so that the steam gives the crust its colour and its crackle.",
    "Astronomers have found a planet about the size of Neptune orbiting a small red star forty "
    "light years away. The planet circles its star every nine days, so close that its surface "
    "is probably far too hot for liquid water. What makes it interesting is its atmosphere: as "
    "the planet passes in front of the star, a little starlight filters through the gas, and "
    "the telescope recorded the faint fingerprints of water vapour and methane. The team plans "
    "further observations next year to learn whether clouds or haze hide part of the spectrum.",
    "The old railway line through the valley closed in the nineteen sixties, and for years the "
    "track bed was overgrown with brambles. Volunteers have now turned twelve miles of it into "
    "a path for walkers and cyclists, rebuilding three viaducts and a tunnel that had been "
    "sealed for safety. Along the way there are information boards about the quarries and mills "
    "the trains once served, and a cafe has opened in the restored station building. On busy "
    "weekends more than a thousand people use the path, and local shops say business is better.",
]
CHINESE = [
    "市政府昨天公布了新的城市公园建设计划，预计在未来三年内新建十二座社区公园，并对现有的老旧公园进行改造。"
    "根据计划，新公园将优先建在人口密集、绿地较少的老城区，每座公园都会设置儿童游乐区、健身步道和休息座椅。"
    "负责该项目的官员表示，市民在规划阶段提出了大量意见，其中最集中的是希望增加树荫和公共厕所。"
    "为此，设计单位调整了方案，把原来的大片草坪改为乔木林，并在每个入口附近增设了卫生设施。"
    "项目所需资金主要来自市级财政，部分由社会资本参与建设和运营。",
    "制作传统的手工面条需要面粉、水和少量盐，关键在于揉面和醒面的时间。先把盐溶在温水里，再一点点倒进面粉中，"
    "用筷子搅成絮状，然后用手揉成光滑的面团。揉好的面团要盖上湿布醒半个小时，让面筋充分舒展。"
    "之后把面团擀成薄片，撒上干面粉防止粘连，折叠起来切成均匀的细条。煮面时水要宽，火要旺，"
    "面条下锅后轻轻搅动，煮到没有白芯就可以捞出，再浇上事先熬好的肉酱或者清汤。",
    "天文学家最近在距离地球约四十光年的一颗红矮星周围发现了一颗大小与海王星相近的行星。"
    "这颗行星每九天绕恒星运行一周，由于距离恒星太近，表面温度很高，几乎不可能存在液态水。"
    "研究人员利用行星从恒星前方经过时的机会，分析了穿过其大气层的星光，发现了水蒸气和甲烷的迹象。"
    "研究团队计划明年继续观测，以确定云层或雾霾是否遮挡了部分光谱，从而更准确地了解这颗行星的大气成分。",
    "山谷里那条老铁路早在上世纪六十年代就停止运营了，多年来铁轨旁长满了荆棘和杂草。"
    "最近，一群志愿者把其中二十公里的路基改造成了供步行和骑车使用的绿道，还修复了三座高架桥和一条隧道。"
    "沿途设立了介绍当年采石场和纺织厂历史的展示牌，修缮后的老车站里也开起了咖啡馆。"
    "每逢周末，来这里散步骑行的人超过一千人次，附近的小商店都说生意比以前好了很多。",
]


def _clusters(docs: list[tuple[str, str]], tmp_path: Path) -> dict[int, int]:
    batches = [
        (
            list(range(len(docs))),
            ["all"] * len(docs),
            [t for t, _ in docs],
            [lang for _, lang in docs],
        )
    ]
    return near_dedup_texts_local(batches, work_dir=tmp_path / "near").labels


def _same(labels: dict[int, int], i: int, j: int) -> bool:
    return labels.get(i, i) == labels.get(j, j)


def _jaccard(a: str, b: str) -> float:
    sa, sb = char_shingles(a), char_shingles(b)
    return len(np.intersect1d(sa, sb)) / len(np.union1d(sa, sb))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = random.Random(3)
    docs, pairs = plant(ENGLISH, CHINESE, rng)
    # Every kind for every base, not only the two `plant` gives each; and one long document per
    # language, since a header and footer alone push a short copy under Jaccard 0.8.
    alphabets = {"en": "abcdefghijklmnopqrstuvwxyz", "zh": "".join(sorted(set("".join(CHINESE))))}
    for language, bases in (("en", ENGLISH), ("zh", CHINESE)):
        for text in bases:
            base = next(i for i, (t, _) in enumerate(docs) if t == text)
            for kind in KINDS:
                docs.append((variant(text, kind, language, rng, alphabets[language]), language))
                pairs.append((base, len(docs) - 1, language, kind))
        docs.append(("\n\n".join(bases), language))
        docs.append((variant(docs[-1][0], "boilerplate", language, rng, ""), language))
        pairs.append((len(docs) - 2, len(docs) - 1, language, "boilerplate"))
    return docs, pairs, _clusters(docs, tmp_path_factory.mktemp("planted"))


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_planted_copy_is_found(planted, language, kind):
    """Copies with character 5-gram Jaccard >= 0.85 (0.87-1.0 here) all join their original."""
    docs, pairs, labels = planted
    chosen = [
        (i, j)
        for i, j, lang, k in pairs
        if lang == language and k == kind and _jaccard(docs[i][0], docs[j][0]) >= 0.85
    ]
    assert len(chosen) >= (1 if kind == "boilerplate" else len(ENGLISH))
    missed = [(i, j) for i, j in chosen if not _same(labels, i, j)]
    assert not missed, [docs[j][0][:80] for _, j in missed]


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("kind", ["splice", "unrelated"])
def test_splices_and_unrelated_documents_stay_apart(planted, language, kind):
    _, pairs, labels = planted
    chosen = [(i, j) for i, j, lang, k in pairs if lang == language and k == kind]
    assert chosen
    assert not [p for p in chosen if _same(labels, *p)]


def test_one_percent_word_edits_hide_english_copies_from_word_shingles():
    """Why English is shingled by characters: 1% of the characters edited leaves the character
    5-gram Jaccard near 0.9 but the word 5-gram Jaccard near 0.6, under the 0.8 threshold."""
    rng = random.Random(0)

    def jaccard(a, b):
        return len(np.intersect1d(a, b)) / len(np.union1d(a, b))

    chars, words = [], []
    for text in ENGLISH:
        copy = variant(text, "substitute-1%", "en", rng, "abcdefghijklmnopqrstuvwxyz")
        chars.append(jaccard(char_shingles(text), char_shingles(copy)))
        words.append(
            jaccard(
                document_shingles(text, "en", scheme="words"),
                document_shingles(copy, "en", scheme="words"),
            )
        )
    assert min(chars) > 0.8 > max(words)


def test_char_shingles_ignore_case_whitespace_and_punctuation():
    a = char_shingles("The quick, brown fox!\n\nJumps over the lazy dog.")
    b = char_shingles("the quick brown fox jumps over the lazy dog")
    assert np.array_equal(a, b)
    assert len(char_shingles("abc", 5)) == 1
    assert len(char_shingles(" ,.!? ", 5)) == 0
    assert len(char_shingles("今天天气很好", 5)) == 2
    with pytest.raises(ValueError, match="shingle scheme"):
        document_shingles("text", "en", scheme="bytes")


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet="abcdefghij 天地人和", min_size=12, max_size=200),
    position=st.integers(min_value=0),
    char=st.sampled_from("xyz山水"),
    n=st.integers(min_value=2, max_value=7),
)
def test_one_edited_character_changes_at_most_n_shingles_each_way(text, position, char, n):
    """The bound behind the choice: a substitution, insertion or deletion of one character
    removes at most `n` character n-grams and adds at most `n` (shingles are a set)."""
    from tinylm_data.textnorm import normalise

    base = normalise(text)
    if len(base) <= n:
        return
    i = position % len(base)
    for edited in (
        base[:i] + char + base[i + 1 :],
        base[:i] + char + base[i:],
        base[:i] + base[i + 1 :],
    ):
        a, b = set(char_shingles(base, n).tolist()), set(char_shingles(edited, n).tolist())
        assert len(a - b) <= n and len(b - a) <= n


def test_a_band_layout_must_fit_the_signature(tmp_path):
    from tinylm_data.dedup import near_dedup_local

    sigs = np.zeros((2, 128), dtype=np.uint64)
    batches = [(np.arange(2), np.zeros(2, np.int64), sigs)]
    with pytest.raises(ValueError, match="20 bands x 8 rows"):
        near_dedup_local(batches, work_dir=tmp_path / "w", layout=(20, 8))
    result = near_dedup_local(batches, work_dir=tmp_path / "w", layout=(32, 4))
    assert (result.bands, result.rows) == (32, 4) and result.labels == {0: 0, 1: 0}


def _shared_bases(corpora: Path, per_language: int) -> tuple[list[str], list[str]]:
    english = []
    for path in sorted((corpora / "dolma_samples").glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            english += [
                t[:4000] for t in (json.loads(line)["text"] for line in handle) if len(t) >= 1000
            ]
    lines = (corpora / "zhwiki_sample" / "zhwiki_sampled.txt").read_text("utf-8").splitlines()
    chinese = [line[:2000] for line in lines if len(line) >= 300]
    # The last documents of each file: the benchmark's tuning half is drawn at random, this
    # test only checks the targets on a different slice.
    return english[-per_language:], chinese[-per_language:]


@pytest.mark.shared
@pytest.mark.slow
def test_targets_on_shared_real_text(shared_data, tmp_path):
    corpora = shared_data / "corpora"
    if not (corpora / "dolma_samples").is_dir():
        pytest.skip("no shared corpora")
    english, chinese = _shared_bases(corpora, 60)
    docs, pairs = plant(english, chinese, random.Random(5))
    labels = _clusters(docs, tmp_path)
    sets = [char_shingles(t) for t, _ in docs]
    for language in ("en", "zh"):
        found = positives = false = negatives = 0
        for i, j, lang, _ in pairs:
            if lang != language:
                continue
            jaccard = len(np.intersect1d(sets[i], sets[j])) / len(np.union1d(sets[i], sets[j]))
            if jaccard >= 0.9:
                positives += 1
                found += _same(labels, i, j)
            elif jaccard <= 0.5:
                negatives += 1
                false += _same(labels, i, j)
        assert positives >= 50 and negatives >= 300
        assert found / positives >= 0.97, (language, found, positives)
        assert false <= 0.001 * negatives, (language, false, negatives)


@pytest.mark.slow
def test_build_rejects_name_the_kept_document(tiny_corpus, tmp_path):
    from tinylm_data.build import BuildOptions, run_build
    from tinylm_data.config import parse_config

    rng = random.Random(1)
    with open(tmp_path / "docs.jsonl", "w", encoding="utf-8") as handle:
        for n, text in enumerate(ENGLISH + CHINESE):
            language = "en" if n < len(ENGLISH) else "zh"
            alphabet = "abcdefghijklmnopqrstuvwxyz" if language == "en" else CHINESE[0]
            copy = variant(text, "substitute-0.5%", language, rng, alphabet)
            for doc_id, body in ((f"base{n}", text), (f"copy{n}", copy)):
                handle.write(json.dumps({"id": doc_id, "text": body}, ensure_ascii=False) + "\n")
    config = {
        "name": "near",
        "tokenizer": str(tiny_corpus.parent / "tokenizer"),
        "block_size": 64,
        "sources": [
            {"name": "web", "kind": "jsonl", "paths": ["docs.jsonl"], "id_field": "id"},
        ],
        "dedup": {"near": {"enabled": True}},
        "validation_share": 0.0,
    }
    result = run_build(parse_config(config), tmp_path, BuildOptions(out_root=tmp_path / "out"))
    table = pq.read_table(result.out_dir / "rejects")
    assert table.schema.field("duplicate_of").type == "string"
    assert table.schema.field("cluster").type == "int64"
    near = [r for r in table.to_pylist() if r["stage"] == "near_dedup"]
    assert sorted((r["doc_id"], r["duplicate_of"]) for r in near) == sorted(
        (f"web/copy{n}", f"web/base{n}") for n in range(len(ENGLISH + CHINESE))
    )
    assert len({r["cluster"] for r in near}) == len(near)  # one cluster per base
    exact = [r for r in table.to_pylist() if r["stage"] == "exact_dedup"]
    assert not exact
