import json

import pytest

from tinylm_data.config import parse_model
from tinylm_data.progress import Progress
from tinylm_data.rag import SquadFileError, squad_contexts, squad_records
from tinylm_data.rag.build import collect_passages
from tinylm_data.rag.config import RagIndexConfig
from tinylm_data.rag.quality import gold_passage_ids

SQUAD = {
    "data": [
        {
            "title": "t",
            "paragraphs": [
                {
                    "context": "Alpha beta gamma. The answer is cobalt blue. Delta epsilon zeta.",
                    "qas": [
                        {"id": "q1", "question": "What is it?",
                         "answers": [{"text": "cobalt blue"}, {"text": "cobalt blue"}, {"text": "cobalt"}]},
                        {"id": "q2", "question": "Nothing?", "answers": []},
                        {"question": 3},
                    ],
                },
                {"context": "   ", "qas": []},
                {"context": "龍井茶產於杭州。上好的龍井色澤翠綠。", "qas": [
                    {"id": "q3", "question": "龍井產於哪裡？", "answers": [{"text": "杭州"}]}]},
            ],
        }
    ]
}  # fmt: skip


@pytest.fixture
def squad_file(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    return path


def test_squad_records_give_context_question_distinct_answers_and_id(squad_file):
    records = list(squad_records(squad_file))
    assert [r.id for r in records] == ["q1", "q2", "q3"]
    assert records[0].answers == ("cobalt blue", "cobalt")
    assert records[0].context.startswith("Alpha") and records[0].context_id == "qa/0-0"
    assert records[1].answers == ()
    assert records[2].context_id == "qa/0-2"


def test_squad_contexts_are_documents_and_bad_paragraphs_rejections(squad_file, tmp_path):
    items = list(squad_contexts(squad_file, source="rc"))
    assert [getattr(i, "id", None) for i in items] == ["rc/qa/0-0", None, "rc/qa/0-2"]
    assert items[1].reason == "bad_paragraph"
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(SquadFileError, match="not SQuAD layout"):
        list(squad_records(bad))
    assert [i.reason for i in squad_contexts(bad, source="rc")] == ["bad_squad_file"]


def _corpus(squad_file, max_tokens, overlap=0):
    cfg = parse_model(
        RagIndexConfig,
        {
            "name": "t",
            "sources": [{"name": "rc", "kind": "squad", "paths": [squad_file.name]}],
            "chunking": {"max_tokens": max_tokens, "overlap": overlap},
        },
    )
    return collect_passages(cfg, squad_file.parent, Progress())


def test_gold_passages_are_the_context_chunks_holding_an_answer(squad_file):
    corpus = _corpus(squad_file, max_tokens=8)
    texts = {p.id: p.text for p in corpus.passages}
    context = SQUAD["data"][0]["paragraphs"][0]["context"]
    doc_id, gold = gold_passage_ids(context, ["cobalt blue"], corpus)
    assert doc_id == "rc/qa/0-0"
    assert gold and all("cobalt blue" in texts[g] for g in gold)
    assert len(gold) < len(corpus.doc_passages[doc_id])  # other chunks of the context are not gold
    # a traditional context and answer find the simplified, cleaned passage
    doc_id, gold = gold_passage_ids("龍井茶產於杭州。上好的龍井色澤翠綠。", ["杭州"], corpus)
    assert doc_id == "rc/qa/0-2" and any("杭州" in texts[g] for g in gold)
    # an answer no passage holds whole, and a context that is not indexed
    assert gold_passage_ids(context, ["gamma cobalt zeta"], corpus)[1] == set()
    assert gold_passage_ids("Some other text.", ["text"], corpus) == (None, set())


def test_duplicate_passages_count_as_the_passage_they_duplicate(tmp_path):
    data = {"data": [{"paragraphs": [
        {"context": "Shared first sentence here. Unique tail one.", "qas": []},
        {"context": "Shared first sentence here. Unique tail two.", "qas": []}]}]}  # fmt: skip
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(data))
    corpus = _corpus(path, max_tokens=4)
    assert corpus.counts["rc"].duplicate_passages == 1
    first, second = corpus.doc_passages["rc/dup/0-0"], corpus.doc_passages["rc/dup/0-1"]
    assert first[0][0] == second[0][0] == "rc/dup/0-0#0"
    _, gold = gold_passage_ids(data["data"][0]["paragraphs"][1]["context"], ["first"], corpus)
    assert gold == {"rc/dup/0-0#0"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"chunking": {"max_tokens": 16, "overlap": 16}}, "overlap 16 must be below max_tokens 16"),
        ({"sources": [{"name": "a", "kind": "jsonl", "paths": ["x"], "weight": 2}]}, "weight"),
        ({"sources": [{"name": "a", "kind": "csv", "paths": ["x"]}]}, "kind"),
        ({"bm25": {"k3": 1}}, "bm25"),
        ({"quality": {"squad": "q.json", "extra": 1}}, "quality.extra"),
    ],
)
def test_config_mistakes_are_reported_by_key(change, message):
    from tinylm_data.config import ConfigError

    data = {"name": "t", "sources": [{"name": "a", "kind": "jsonl", "paths": ["x"]}], **change}
    with pytest.raises(ConfigError, match=message):
        parse_model(RagIndexConfig, data)
