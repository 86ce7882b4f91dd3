import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.rag.chunking import chunk_spans, sentence_spans
from tinylm_shards.retrieval import bm25_tokens


def bm25_count(text: str) -> int:
    return len(bm25_tokens(text))


def words(text: str) -> int:
    return len(text.split())


def chunks(text, max_tokens, overlap, count=bm25_count):
    return [
        text[s:e] for s, e in chunk_spans(text, max_tokens=max_tokens, overlap=overlap, count=count)
    ]


def test_sentences_end_at_chinese_and_english_sentence_marks():
    text = "北京是首都。长城很长！“真的吗？”他问。It is 3.5 m tall. Yes!\nNext"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "北京是首都。", "长城很长！", "“真的吗？”", "他问。", "It is 3.5 m tall. ", "Yes!\n", "Next",
    ]  # fmt: skip


def test_passages_end_at_sentence_ends_and_fit():
    text = "One two three four. Five six seven. Eight nine ten eleven. Twelve."
    got = chunks(text, 7, 0, words)
    assert got == ["One two three four. Five six seven. ", "Eight nine ten eleven. Twelve."]


def test_consecutive_passages_share_whole_sentences_up_to_the_overlap():
    text = "A1 a2 a3. B1 b2. C1 c2. D1 d2 d3. E1."
    got = chunks(text, 7, 2, words)
    # B and C are 2 words each: the second passage repeats C (2 <= overlap), not B and C (4)
    assert got == ["A1 a2 a3. B1 b2. C1 c2. ", "C1 c2. D1 d2 d3. E1."]
    no_overlap = chunks(text, 7, 0, words)
    assert no_overlap == ["A1 a2 a3. B1 b2. C1 c2. ", "D1 d2 d3. E1."]


def test_chinese_passages_count_jieba_tokens_and_break_after_sentence_marks():
    text = "龙井茶产于杭州西湖。龙井茶是中国名茶。上好的龙井色泽翠绿。赵州桥建于隋朝。"
    got = chunks(text, 8, 0)
    assert all(c.endswith("。") for c in got)
    assert "".join(got) == text
    assert all(bm25_count(c) <= 8 for c in got)
    assert len(got) > 1


def test_an_over_long_sentence_is_cut_at_clauses_then_between_characters():
    clauses = "长城东起山海关，西至嘉峪关，全长两万多公里。"
    got = chunks(clauses, 5, 0)
    assert got[0].endswith("，") and "".join(got) == clauses
    unbroken = "中" * 30
    got = chunks(unbroken, 4, 0)
    assert "".join(got) == unbroken and all(bm25_count(c) <= 4 for c in got)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        chunk_spans("x", max_tokens=4, overlap=4, count=words)


_PIECES = st.sampled_from(
    ["北京是首都。", "长城很长，东起山海关。", "The tower is tall. ", "Bees dance! ", "\n", "  ",
     "It was built in 1889, by workers; ", "龙井茶", "非常好喝？", "word ", "。", "中华人民共和国"]
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(_PIECES, max_size=25),
    max_tokens=st.integers(1, 20),
    overlap_share=st.floats(0, 0.99),
)
def test_chunking_properties(pieces, max_tokens, overlap_share):
    text = "".join(pieces)
    overlap = int(overlap_share * max_tokens)
    spans = chunk_spans(text, max_tokens=max_tokens, overlap=overlap, count=bm25_count)
    for s, e in spans:
        assert bm25_count(text[s:e]) <= max_tokens
        assert text[s:e].strip()
    # in order, always advancing, no gap: every character with tokens is in some passage
    for (s1, e1), (s2, e2) in zip(spans, spans[1:], strict=False):
        assert s1 < s2 and e1 < e2 and s2 <= e1
        assert bm25_count(text[s2:e1]) <= overlap or s2 == e1
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    assert all(i in covered for i, ch in enumerate(text) if bm25_tokens(ch))
