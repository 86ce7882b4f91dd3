"""RAFT sampling: the gold share, distractors that are never the gold passage or a near copy, the
prompt format shared with `tinylm-eval rag`, and passages cut before the answer is."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.rag.raft import (
    GoldContext,
    RetrievalConfig,
    choose_passages,
    cut_passage,
    fit_passages,
    supporting_sentence,
)
from tinylm_shards.retrieval import rag_prompt
from tinylm_shards.squad import containment

GOLD = GoldContext(
    "The lighthouse of Harrow Point was built in 1874 on a granite ledge by Mara Quill.",
    ("Mara Quill",),
)
POOL = [
    GOLD.context,  # the gold passage itself, as BM25 finds it first
    "The lighthouse of Harrow Point was built in 1874 on a granite ledge.",  # a chunk of it
    "Mara Quill also designed the harbour wall.",  # holds the answer
    "Honey bees communicate the direction of flowers with a waggle dance.",
    "The glassworks of Merren were founded in 1731.",
    "Kerosene replaced whale oil in many lamps around 1900.",
    "A granite ledge is a shelf of hard rock.",
]


def retrieve(query, n):
    return POOL[:n]


def test_the_gold_share_is_respected_within_two_percent_over_5000_samples():
    config = RetrievalConfig(index="x", k=3, gold_share=0.8)
    with_gold = sum(
        choose_passages(
            "Who built it?", GOLD, retrieve, config, random.Random(f"0:s{i}")
        ).gold_position
        is not None
        for i in range(5000)
    )
    assert abs(with_gold / 5000 - 0.8) <= 0.02


def test_distractors_are_never_the_gold_passage_nor_a_near_copy_nor_hold_the_answer():
    config = RetrievalConfig(index="x", k=4, gold_share=0.5)
    positions = set()
    for i in range(200):
        choice = choose_passages("Who built it?", GOLD, retrieve, config, random.Random(i))
        distractors = [p for n, p in enumerate(choice.passages) if n != choice.gold_position]
        for text in distractors:
            assert text != GOLD.context and "Mara Quill" not in text
            assert containment(text, GOLD.context) < config.near_copy
        assert len(choice.passages) == 4
        if choice.gold_position is not None:
            assert choice.passages[choice.gold_position] == GOLD.context
            positions.add(choice.gold_position)
    assert positions == {0, 1, 2, 3}  # shuffled: the gold passage is anywhere
    assert choice.gold_bm25_rank == 1  # POOL[0] is the gold context


def test_the_choice_depends_only_on_the_seeded_rng():
    config = RetrievalConfig(index="x")
    a = choose_passages("q", GOLD, retrieve, config, random.Random("7:id"))
    b = choose_passages("q", GOLD, retrieve, config, random.Random("7:id"))
    assert a == b


def test_the_prompt_format_is_the_shared_block():
    assert (
        rag_prompt("Who?", ["one\ntwo", "three"])
        == "Passages:\n[1] one two\n[2] three\n\nQuestion: Who?"
    )
    assert rag_prompt("Who?", None) == "Who?"


def test_the_gold_passage_is_cut_around_its_answer_and_distractors_to_their_start():
    text = "x" * 50 + "ANSWER" + "y" * 50
    assert (
        "ANSWER" in cut_passage(text, 20, "ANSWER") and len(cut_passage(text, 20, "ANSWER")) == 20
    )
    assert cut_passage(text, 10, None) == "x" * 10


def test_fitting_cuts_passages_first_drops_short_distractors_and_rejects_what_cannot_fit():
    passages = ["a" * 200, "b" * 40 + " ANSWER " + "c" * 40, "d" * 200]

    def fits_under(limit):
        return lambda ps: sum(len(p) for p in ps) <= limit

    out, position = fit_passages(passages, 1, "ANSWER", fits_under(10_000), 16)
    assert out == passages and position == 1
    out, position = fit_passages(passages, 1, "ANSWER", fits_under(150), 16)
    assert sum(map(len, out)) <= 150 and len(out) == 3 and "ANSWER" in out[position]
    # the largest cap: one more character per passage would not fit
    assert sum(map(len, out)) > 150 - 3
    out, position = fit_passages(passages, 1, "ANSWER", fits_under(30), 16)
    assert out == [out[position]] and "ANSWER" in out[0]  # distractors dropped
    assert fit_passages(passages, 1, "ANSWER", fits_under(3), 16) is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=80), max_size=5), st.integers(0, 400))
def test_fitting_always_fits_or_says_it_cannot(passages, limit):
    def fits(ps):
        return sum(len(p) for p in ps) <= limit

    result = fit_passages(passages, None, "", fits, 8)
    assert result is not None and fits(result[0])


def test_the_supporting_sentence_is_the_one_holding_the_answer():
    context = "Merren is a town. Its glassworks were founded by Aldo Vos in 1731. It closed later."
    assert (
        supporting_sentence(context, "Aldo Vos")
        == "Its glassworks were founded by Aldo Vos in 1731."
    )
    assert supporting_sentence("臺北是首都。人口很多。", "人口") == "人口很多。"


def test_a_squad_source_needs_a_retrieval_section():
    from tinylm_data.sft.config import SftConfig

    source = {"name": "drcd", "kind": "squad", "paths": ["d.json"], "articles": "0:10"}
    with pytest.raises(ValueError, match="retrieval section"):
        SftConfig(sources=[source])
    assert SftConfig(sources=[source], retrieval={"index": "idx"}).retrieval.k == 3
    with pytest.raises(ValueError, match="gold_share"):
        SftConfig(sources=[source], retrieval={"index": "idx", "gold_share": 1.5})


def test_a_missing_index_is_a_config_error_before_any_work(tmp_path):
    from tinylm_data.config import ConfigError
    from tinylm_data.sft.build import run_sft_build
    from tinylm_data.sft.config import SftConfig

    (tmp_path / "d.json").write_text('{"data": []}', encoding="utf-8")
    config = SftConfig(
        sources=[{"name": "drcd", "kind": "squad", "paths": ["d.json"]}],
        retrieval={"index": "no-such-index"},
    )
    with pytest.raises(ConfigError, match="retrieval.index: .*no-such-index"):
        run_sft_build(config, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_raft_build_puts_passages_in_user_turns_and_counts_them(tmp_path):
    import yaml

    from tinylm_data.cli_rag import sample_config_path
    from tinylm_data.progress import Progress
    from tinylm_data.rag.build import run_rag_index
    from tinylm_data.rag.config import RagIndexConfig
    from tinylm_data.sft.build import run_sft_build
    from tinylm_data.sft.config import SftConfig

    sample = sample_config_path()
    run_rag_index(
        RagIndexConfig(**yaml.safe_load(sample.read_text())),
        sample.parent,
        tmp_path / "idx",
        Progress(),
    )
    config = SftConfig(
        max_length=160,
        augment={"enabled": False},
        sources=[
            {
                "name": "reading",
                "kind": "squad",
                "paths": [str(sample.parent / "questions.json")],
                "clean": ["unicode", "t2s"],
                "heldout_share": 0.0,
            }
        ],
        retrieval={"index": str(tmp_path / "idx" / "rag-sample"), "k": 2, "gold_share": 0.5},
    )
    result = run_sft_build(config, tmp_path, tmp_path / "out", Progress())
    stats = result.stats["retrieval"]
    kept = result.stats["sources"]["reading"]["accounting"]["kept"]
    assert kept >= 4 and stats["squad_samples"] == kept
    assert stats["with_gold"] + stats["without_gold"] == kept
    assert sum(stats["gold_position"].values()) == stats["with_gold"]
    assert sum(stats["gold_bm25_rank"].values()) == kept
    rows = list((result.out_dir / "shards").glob("*.parquet"))
    assert rows
    assert json.loads((result.out_dir / "stats.json").read_text())["retrieval"] == stats
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(result.out_dir / "tokenizer" / "tokenizer.json"))
    table = pq.read_table(rows[0])
    text = "".join(tokenizer.decode(ids) for ids in table.column("input_ids").to_pylist())
    assert "Passages:" in text and "[1]" in text and "Question:" in text
