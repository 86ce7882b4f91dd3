"""Retrieval end to end: `tinylm-data rag index` over a SQuAD-layout file, `tinylm-data sft build`
with a RAFT `retrieval` section, `tinylm-train sft`, and `tinylm-eval rag` on held-out articles:
the model answers better with the retrieved passages than closed book (EM and F1 both higher).

A model small enough for a CPU test cannot learn reading comprehension from a slice of DRCD, so
the data is AUTHORED the same way: made-up entities with made-up attributes planted in passages
(closed book cannot know them), one question per passage, SQuAD layout. Training uses articles
[0, TRAIN) and the evaluation articles [TRAIN, end): no held-out context is seen in training.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from cli_run import run_cli as _run
from cli_run import save_random_qwen2

pytestmark = pytest.mark.slow  # index, build, 400 CPU training steps, three eval passes (~6 min)

TRAIN, HELD_OUT = 600, 40
RELATIONS = ("emblem", "password", "totem", "symbol")
# one token each in the sample tokenizer: a copy of one token is what a 2-layer model can learn
# in a CPU test's steps; drawn at random per entity, so closed book can only guess
VALUES = (
    "red",
    "green",
    "stone",
    "water",
    "salt",
    "iron",
    "glass",
    "paper",
    "music",
    "garden",
    "tower",
    "bridge",
    "market",
    "mountain",
    "north",
    "south",
    "west",
    "king",
    "star",
    "sun",
    "rain",
)
SYLLABLES = ("ka", "lo", "mi", "ru", "ve", "zan", "tor", "pel", "qui", "dro", "sen", "bau")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def authored_facts(n: int, seed: int = 0) -> dict:
    """`n` articles, each one passage planting one made-up fact, with one question about it."""
    rng = random.Random(seed)
    names: set[str] = set()
    articles = []
    while len(articles) < n:
        entity, value = _word(rng), rng.choice(VALUES)
        if entity in names:
            continue
        names.add(entity)
        relation = RELATIONS[len(articles) % len(RELATIONS)]
        context = f"The {relation} of {entity} is {value}."
        question = f"What is the {relation} of {entity}?"
        qa = {
            "id": f"f{len(articles)}",
            "question": question,
            "answers": [{"text": value, "answer_start": context.index(value)}],
        }
        articles.append({"title": entity, "paragraphs": [{"context": context, "qas": [qa]}]})
    return {"version": "authored", "data": articles}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("rag-e2e")
    (work / "facts.json").write_text(json.dumps(authored_facts(TRAIN + HELD_OUT)), "utf-8")
    (work / "index.yaml").write_text(
        "name: facts\n"
        "sources: [{name: facts, kind: squad, paths: [facts.json]}]\n"
        "chunking: {max_tokens: 48, overlap: 0}\n",
        encoding="utf-8",
    )
    _run("tinylm-data", "rag", "index", "--config", "index.yaml", "--out", "idx", cwd=work)
    (work / "sft.yaml").write_text(
        "name: raft\n"
        "tokenizer: builtin:sample\n"
        "max_length: 128\n"
        "augment: {enabled: false}\n"
        "retrieval: {index: idx/facts, k: 2, gold_share: 0.8}\n"
        "sources:\n"
        f"  - {{name: facts, kind: squad, paths: [facts.json], articles: '0:{TRAIN}',"
        " heldout_share: 0.05}\n",
        encoding="utf-8",
    )
    _run("tinylm-data", "sft", "build", "--config", "sft.yaml", "--out", "out", cwd=work)
    save_random_qwen2(work / "base", vocab_size=8000, hidden_size=128)
    (work / "train.yaml").write_text(
        "output_dir: run\n"
        "model: {init_from: base}\n"
        "data: {path: out/raft, per_device_batch_size: 8}\n"
        "optimisation: {max_steps: 400, learning_rate: 3.0e-3, warmup_steps: 20, weight_decay: 0.0}\n"
        "checkpoint: {save_steps: 10000}\n",
        encoding="utf-8",
    )
    _run("tinylm-train", "sft", "--config", "train.yaml", cwd=work)
    said = _run(
        "tinylm-eval",
        "rag",
        "--model",
        "run/final",
        "--data",
        "facts.json",
        "--index",
        "idx/facts",
        "--k",
        "2",
        "--articles",
        f"{TRAIN}:",
        "--out",
        "rag-eval",
        "--max-new-tokens",
        "12",
        "--device",
        "cpu",
        cwd=work,
    )
    print(said)
    return json.loads((work / "rag-eval" / "results.json").read_text("utf-8")) | {"dir": str(work)}


def test_retrieved_passages_beat_closed_book_on_held_out_questions(results):
    scores = results["scores"]
    gap = results["gap_retrieved_vs_closed_book"]
    print(
        f"held-out {results['questions']}: closed book {scores['closed_book']}, retrieved "
        f"{scores['retrieved']}, oracle {scores['oracle']}; gap EM {gap['em']:+.3f} F1 {gap['f1']:+.3f}"
    )
    assert results["questions"] == HELD_OUT
    assert scores["retrieved"]["em"] > scores["closed_book"]["em"]
    assert scores["retrieved"]["f1"] > scores["closed_book"]["f1"]


def test_the_run_leaves_predictions_and_a_plot(results):
    work = Path(results["dir"]) / "rag-eval"
    rows = [
        json.loads(line) for line in (work / "predictions.jsonl").read_text("utf-8").splitlines()
    ]
    assert len(rows) == HELD_OUT and {"closed_book", "retrieved", "oracle"} <= rows[0].keys()
    assert (work / "rag.png").stat().st_size > 0
    held_out_contexts = {r["context_id"] for r in rows}
    assert all(int(c.split("/")[1].split("-")[0]) >= TRAIN for c in held_out_contexts)
