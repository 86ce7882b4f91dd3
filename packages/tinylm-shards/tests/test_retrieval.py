import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_shards import ShardError, load_manifest
from tinylm_shards.retrieval import (
    TOKENIZER,
    Passage,
    RetrievalIndex,
    bm25_tokens,
    format_passages,
    load_index_manifest,
    rag_prompt,
    write_index,
)

PASSAGES = [
    Passage("a#0", "a", "wiki", "The Eiffel Tower is a wrought-iron lattice tower in Paris."),
    Passage("a#1", "a", "wiki", "It was designed by the engineering company of Gustave Eiffel."),
    Passage("b#0", "b", "wiki", "长城是中国古代的军事防御工程，东起山海关。"),
    Passage("c#0", "c", "news", "北京是中华人民共和国的首都，位于华北平原。"),
    Passage("d#0", "d", "news", "Photosynthesis converts light energy into chemical energy."),
]
SETTINGS = {"chunking": {"max_tokens": 64, "overlap": 8}}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("index") / "demo"
    write_index(PASSAGES, out, settings=SETTINGS)
    return out


# --- tokens ------------------------------------------------------------------------------------


def test_english_tokens_are_lower_case_words_without_stop_words():
    assert bm25_tokens("The Tower IS in Paris, and it's tall!") == ["tower", "paris", "s", "tall"]


def test_chinese_is_segmented_by_jieba_not_one_token_per_sentence():
    tokens = bm25_tokens("北京是中华人民共和国的首都。")
    assert "北京" in tokens and "首都" in tokens
    # search mode adds the words inside a long word
    assert {"中华人民共和国", "人民", "共和国"} <= set(tokens)
    assert "。" not in tokens and all(t.strip() for t in tokens)


def test_traditional_and_full_width_fold_to_the_simplified_and_ascii_tokens():
    assert bm25_tokens("北京是中華人民共和國的首都") == bm25_tokens("北京是中华人民共和国的首都")
    assert bm25_tokens("ＰＡＲＩＳ ２０２４") == ["paris", "2024"]


def test_mixed_text_splits_latin_from_han_without_a_space():
    assert bm25_tokens("GPT模型") == ["gpt", "模型"]


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=80))
def test_tokens_never_hold_spaces_or_punctuation(text):
    for token in bm25_tokens(text):
        assert token and token == token.strip()
        assert not any(ch in token for ch in "，。,.!?;:")


def test_import_stays_light():
    code = (
        "import sys, tinylm_shards, tinylm_shards.retrieval; "
        "print(sorted(m for m in ('bm25s', 'jieba', 'opencc', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- index -------------------------------------------------------------------------------------


def test_manifest_records_format_counts_tokenizer_and_settings(index_dir):
    manifest = load_index_manifest(index_dir)
    raw = manifest.raw
    assert raw["format"] == "tinylm-bm25-index" and raw["schema_version"] == 1
    assert manifest.version.startswith("v-") and len(manifest.version) == 18
    assert (index_dir / "LATEST").read_text().strip() == manifest.version
    assert raw["counts"]["passages"] == 5 and raw["counts"]["documents"] == 4
    assert raw["counts"]["sources"] == {"news": 2, "wiki": 3}
    assert raw["tokenizer"] == TOKENIZER
    assert raw["settings"] == SETTINGS
    assert {f["path"] for f in raw["files"]} >= {"passages.arrow", "bm25/params.index.json"}


def test_version_is_content_addressed(tmp_path, index_dir):
    again = write_index(PASSAGES, tmp_path / "again", settings=SETTINGS)
    assert again.version == load_index_manifest(index_dir).version
    other = write_index(PASSAGES[:4], tmp_path / "again", settings=SETTINGS)
    assert other.version != again.version
    assert (tmp_path / "again" / "LATEST").read_text().strip() == other.version
    changed = write_index(PASSAGES, tmp_path / "x", settings={"chunking": {"max_tokens": 32}})
    assert changed.version != again.version


def test_publish_leaves_no_temporary_and_rewriting_the_same_version_is_safe(tmp_path):
    out = tmp_path / "idx"
    first = write_index(PASSAGES, out, settings=SETTINGS)
    second = write_index(PASSAGES, out, settings=SETTINGS)
    assert first.version == second.version
    assert sorted(p.name for p in out.iterdir()) == ["LATEST", first.version]


def test_a_write_that_fails_half_way_leaves_the_published_index_alone(tmp_path, monkeypatch):
    import bm25s

    out = tmp_path / "idx"
    first = write_index(PASSAGES, out, settings=SETTINGS)

    def disk_full(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(bm25s.BM25, "save", disk_full)
    with pytest.raises(OSError, match="no space"):
        write_index(PASSAGES[:3], out, settings=SETTINGS)
    # passages.arrow of the new version was written, then thrown away with its directory
    assert sorted(p.name for p in out.iterdir()) == ["LATEST", first.version]
    assert (out / "LATEST").read_text().strip() == first.version
    assert len(RetrievalIndex.open(out)) == len(PASSAGES)
    with pytest.raises(TypeError):
        write_index(PASSAGES, out, settings={"not json": object()})


def test_a_failed_write_publishes_nothing(tmp_path):
    out = tmp_path / "idx"
    bad = [*PASSAGES, Passage("a#0", "a", "wiki", "duplicate id")]
    with pytest.raises(ShardError, match="occurs twice"):
        write_index(bad, out, settings=SETTINGS)
    assert not (out / "LATEST").exists()
    with pytest.raises(ShardError, match="no passages"):
        write_index([], out, settings=SETTINGS)


@pytest.mark.parametrize("mmap", [True, False])
def test_search_finds_the_passage_in_both_languages(index_dir, mmap):
    index = RetrievalIndex.open(index_dir, mmap=mmap)
    assert len(index) == 5
    hits = index.search("Who designed the Eiffel tower?", k=3)
    assert hits[0].passage.doc_id == "a" and hits[0].rank == 1
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score > 0 for a, b in zip(hits, hits[1:], strict=False))
    # a traditional query against simplified passages
    assert index.search("中華人民共和國的首都是哪裡？", k=1)[0].passage.id == "c#0"
    assert index.search("长城东起哪里", k=2)[0].passage.id == "b#0"


def test_mmap_load_maps_the_matrix_and_the_passages(index_dir):
    import pyarrow as pa

    before = pa.total_allocated_bytes()
    index = RetrievalIndex.open(index_dir, mmap=True)
    mapped = pa.total_allocated_bytes() - before
    assert isinstance(index._retriever.scores["data"], np.memmap)
    before = pa.total_allocated_bytes()
    plain = RetrievalIndex.open(index_dir, mmap=False)
    read = pa.total_allocated_bytes() - before
    # the mapped passages are not copied into Arrow memory; read ones are
    assert mapped == 0 and read >= sum(len(p.text.encode()) for p in PASSAGES)
    assert not isinstance(plain._retriever.scores["data"], np.memmap)
    assert index.passage(2) == plain.passage(2) == PASSAGES[2]


def test_search_returns_only_matching_passages_and_many_equals_one_by_one(index_dir):
    index = RetrievalIndex.open(index_dir)
    assert index.search("zzzz qqqq", k=5) == []
    assert index.search("", k=5) == []
    assert len(index.search("energy", k=5)) == 1
    queries = ["Eiffel", "首都", "light energy"]
    assert index.search_many(queries, k=2) == [index.search(q, k=2) for q in queries]
    with pytest.raises(ValueError):
        index.search("Eiffel", k=0)


def test_ties_are_broken_by_row(tmp_path):
    same = [Passage(f"p{i}", f"d{i}", "s", "identical text about tigers") for i in range(6)]
    write_index(same, tmp_path / "ties", settings={})
    hits = RetrievalIndex.open(tmp_path / "ties").search("tigers", k=3)
    assert [h.passage.id for h in hits] == ["p0", "p1", "p2"]


def test_bad_index_dirs_give_clear_errors(tmp_path, index_dir):
    with pytest.raises(ShardError, match="not a retrieval index: it holds neither"):
        RetrievalIndex.open(tmp_path)
    root = load_index_manifest(index_dir).root

    def broken(change):
        copy = tmp_path / "broken" / root.name
        shutil.rmtree(copy.parent, ignore_errors=True)
        shutil.copytree(root, copy)
        raw = json.loads((copy / "manifest.json").read_text())
        change(raw, copy)
        (copy / "manifest.json").write_text(json.dumps(raw))
        return copy

    with pytest.raises(ShardError, match="not a retrieval index"):
        RetrievalIndex.open(broken(lambda raw, _: raw.update(format="tinylm-packed-blocks")))
    with pytest.raises(ShardError, match="schema_version 9"):
        RetrievalIndex.open(broken(lambda raw, _: raw.update(schema_version=9)))
    with pytest.raises(ShardError, match="rebuild the index"):
        RetrievalIndex.open(
            broken(lambda raw, _: raw["tokenizer"].update(version=TOKENIZER["version"] + 1))
        )
    with pytest.raises(ShardError, match="missing"):
        RetrievalIndex.open(broken(lambda _, d: (d / "passages.arrow").unlink()))
    with pytest.raises(ShardError, match="lacks or mistypes"):
        RetrievalIndex.open(broken(lambda raw, _: raw.pop("counts")))
    # a shard reader refuses an index by name
    with pytest.raises(ShardError, match="unknown format 'tinylm-bm25-index'"):
        load_manifest(root)


# --- prompt ------------------------------------------------------------------------------------


def test_passage_block_is_numbered_one_line_per_passage():
    block = format_passages(["First  passage.", "Second\npassage\n\nwith lines."])
    assert block == "[1] First passage.\n[2] Second passage with lines."
    assert format_passages([]) == ""


def test_rag_prompt_holds_block_then_question_and_closed_book_is_the_question():
    prompt = rag_prompt(" 谁设计了埃菲尔铁塔？ ", ["埃菲尔铁塔由古斯塔夫·埃菲尔的公司设计。", "B"])
    assert prompt == (
        "Passages:\n[1] 埃菲尔铁塔由古斯塔夫·埃菲尔的公司设计。\n[2] B\n\n"
        "Question: 谁设计了埃菲尔铁塔？"
    )
    assert rag_prompt("Who?", None) == "Who?"
    assert rag_prompt("Who?", []) == "Who?"


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1), max_size=6)
)
def test_block_has_one_numbered_line_per_passage(texts):
    lines = format_passages(texts).split("\n") if texts else []
    assert len(lines) == len(texts)
    for number, line in enumerate(lines, start=1):
        assert line.startswith(f"[{number}] ") or line == f"[{number}]"
