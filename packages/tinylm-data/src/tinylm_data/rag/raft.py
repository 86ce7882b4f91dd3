"""RAFT-style SFT samples: questions whose user turn carries retrieved passages.

A `squad` SFT source reads SQuAD-layout questions as closed-book conversations (question ->
first answer), which pass through cleaning, dedup, hold-out (by context: every question of one
paragraph lands on the same side) and augmentation like any other sample; the gold context and
answers wait in a side table. Right before encoding, `RaftAttacher` puts k passages in the user
turn with the shared `rag_prompt`, so `tinylm-eval rag` asks in exactly this form:

- with probability `gold_share` the gold context plus k-1 distractors, else k distractors;
- distractors are the BM25 hits for the question minus every *near copy* of the gold context: a
  passage holding a (folded) answer, or whose character 5-gram containment in the gold context
  is >= `near_copy` (`tinylm_shards.squad`), which also removes other chunks of that context;
- the order is shuffled; each sample's RNG is `Random("<seed>:<sample id>")`, so a sample's
  passages do not depend on the others;
- too long: passages are cut before the question or answer (`fit_passages`): the gold one to a
  window around its answer, distractors to their start, a distractor dropped once its cap falls
  under `min_passage_chars`; a sample whose question and answer alone do not fit is rejected
  (`answer_does_not_fit`).

Samples of other sources get k retrieved passages (no gold label) with probability
`unlabeled_share`.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from tinylm_shards.retrieval import rag_prompt
from tinylm_shards.squad import SquadFileError, containment, holds_answer, squad_records

from ..config import _Strict
from ..document import Rejection

if TYPE_CHECKING:
    from ..sft.conversation import Conversation

ANSWER_DOES_NOT_FIT = "answer_does_not_fit"
NO_ANSWER = "no_answer"
BAD_SQUAD_FILE = "bad_squad_file"

Retriever = Callable[[str, int], Sequence[str]]
"""(query, n) -> the texts of the best n passages, best first."""


class RetrievalConfig(_Strict):
    """The `retrieval` section of an SFT build: passages in the user turn (RAFT)."""

    index: str = Field(
        description="Retrieval index (tinylm-data rag index output), relative to the config."
    )
    k: int = Field(3, ge=1, le=32, description="Passages per prompt.")
    gold_share: float = Field(
        0.8, ge=0, le=1, description="Share of squad samples whose passages include the gold one."
    )
    candidates: int = Field(
        20, ge=1, description="BM25 hits fetched per question, before near copies are removed."
    )
    near_copy: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A hit with at least this share of its char 5-grams in the gold context is "
        "never a distractor (nor is a hit holding an answer).",
    )
    quote_support: bool = Field(
        False, description="Answer = the supporting sentence quoted, then the answer."
    )
    unlabeled_share: float = Field(
        0.0, ge=0, le=1, description="Share of non-squad samples given k retrieved passages."
    )
    min_passage_chars: int = Field(
        32, ge=1, description="A distractor cut shorter than this is dropped instead."
    )


@dataclass(frozen=True, slots=True)
class GoldContext:
    context: str
    answers: tuple[str, ...]


def squad_conversations(
    path: Path, *, source: str, display: str, articles: str | None
) -> Iterator[Conversation | Rejection]:
    """Closed-book conversations (question -> first answer), grouped by context for hold-out;
    each id's gold context and answers go to `table`."""
    from ..sft.conversation import Conversation  # why: sft.build imports this module

    try:
        for number, record in enumerate(squad_records(path, articles), start=1):
            sample_id = f"{source}/{record.id}"
            if not record.answers:
                yield Rejection(
                    source, "read", NO_ANSWER, "unanswerable question", sample_id, display, number
                )
                continue
            yield Conversation(
                sample_id,
                source,
                [(record.question, record.answers[0])],
                None,
                display,
                number,
                group=f"{source}/{record.context_id}",
                evidence={"context": record.context, "answers": list(record.answers)},
            )
    except SquadFileError as exc:
        yield Rejection(source, "read", BAD_SQUAD_FILE, str(exc), file=display)


@dataclass(slots=True)
class RaftChoice:
    passages: list[str]
    gold_position: int | None
    """Index of the gold passage in `passages`, None without one."""
    gold_bm25_rank: int | None = None
    """1-based rank of the first BM25 hit that is the gold passage (None: not in the candidates)."""


def choose_passages(
    question: str,
    gold: GoldContext | None,
    retrieve: Retriever,
    config: RetrievalConfig,
    rng: random.Random,
) -> RaftChoice:
    """The sample's passages, shuffled. With `gold`, the gold context with probability
    `gold_share` and distractors that are never a near copy of it."""
    with_gold = gold is not None and rng.random() < config.gold_share
    hits = list(retrieve(question, config.candidates))
    gold_rank = None
    if gold is not None:
        near = [
            holds_answer(h, gold.answers) or containment(h, gold.context) >= config.near_copy
            for h in hits
        ]
        gold_rank = next(
            (
                i + 1
                for i, h in enumerate(hits)
                if holds_answer(h, gold.answers)
                and containment(h, gold.context) >= config.near_copy
            ),
            None,
        )
        hits = [h for h, is_near in zip(hits, near, strict=True) if not is_near]
    passages = hits[: config.k - with_gold]
    if with_gold:
        passages.append(gold.context)
    order = list(range(len(passages)))
    rng.shuffle(order)
    shuffled = [passages[i] for i in order]
    gold_position = order.index(len(passages) - 1) if with_gold else None
    return RaftChoice(shuffled, gold_position, gold_rank)


def supporting_sentence(context: str, answer: str) -> str | None:
    """The sentence of the context that holds the answer (split at 。！？.!? and newlines)."""
    import re

    at = context.find(answer)
    if at < 0:
        return None
    starts = [0] + [
        m.end() for m in re.finditer(r"[。！？!?\n]|\.(?=\s)", context) if m.end() <= at
    ]
    end = re.search(r"[。！？!?\n]|\.(?=\s|$)", context[at + len(answer) :])
    stop = at + len(answer) + (end.end() if end else len(context))
    return context[starts[-1] : stop].strip()


def cut_passage(text: str, cap: int, answer: str | None) -> str:
    """`text` cut to `cap` characters: around the answer when it holds it, else its start."""
    if len(text) <= cap:
        return text
    at = text.find(answer) if answer else -1
    if at < 0:
        return text[:cap]
    start = max(0, min(at - (cap - len(answer)) // 2, len(text) - cap))
    return text[start : start + cap]


def fit_passages(
    passages: Sequence[str],
    gold_position: int | None,
    answer: str,
    fits: Callable[[list[str]], bool],
    min_chars: int,
) -> tuple[list[str], int | None] | None:
    """The largest per-passage character cap at which `fits(passages)` (binary search), dropping
    distractors cut under `min_chars`; None when even no passage at all does not fit."""

    def at(cap: int) -> tuple[list[str], int | None]:
        out, position = [], None
        for i, text in enumerate(passages):
            if i == gold_position:
                position = len(out)
                out.append(cut_passage(text, max(cap, len(answer)), answer))
            elif min(cap, len(text)) >= min_chars:
                out.append(cut_passage(text, cap, None))
        return out, position

    whole = list(passages)
    if fits(whole):
        return whole, gold_position
    if not fits(at(0)[0]):  # not even the question and the answer (or its window)
        return None
    low, high = 0, max((len(p) for p in passages), default=0) + 1  # fits at low, not at high
    while high - low > 1:
        mid = (low + high) // 2
        if fits(at(mid)[0]):
            low = mid
        else:
            high = mid
    return at(low)


class RaftAttacher:
    """Puts passages in the user turn of each sample; see the module docstring. Counts go to
    the caller's per-source counter under `retrieval/...` keys (`retrieval_stats` sums them)."""

    def __init__(self, config: RetrievalConfig, index, seed: int) -> None:
        self.config, self.index, self.seed = config, index, seed

    def retrieve(self, query: str, n: int) -> list[str]:
        return [h.passage.text for h in self.index.search(query, n)]

    def attach(
        self,
        conversation: Conversation,
        encode: Callable[[Conversation], object],
        clean: Callable[[str], str],
        counts: Counter,
    ):
        """(conversation with passages, its encoding), or None: its answer does not fit. `encode`
        returns an Encoded or raises; `clean` is the source's cleaner for the passages."""
        evidence = conversation.evidence
        gold = GoldContext(evidence["context"], tuple(evidence["answers"])) if evidence else None
        rng = random.Random(f"{self.seed}:{conversation.id}")
        question, answer = conversation.turns[-1]
        if gold is None and rng.random() >= self.config.unlabeled_share:
            return conversation, encode(conversation)
        gold_clean = (
            GoldContext(clean(gold.context), tuple(clean(a) for a in gold.answers))
            if gold
            else None
        )
        choice = choose_passages(question, gold_clean, self.retrieve, self.config, rng)
        choice.passages = [clean(p) for p in choice.passages]
        if gold is not None and self.config.quote_support:
            sentence = supporting_sentence(gold_clean.context, answer)
            if sentence:
                answer = (
                    f"「{sentence}」\n{answer}" if _cjk(sentence) else f'"{sentence}"\n{answer}'
                )

        def build(passages: list[str]) -> Conversation:
            turns = [*conversation.turns[:-1], (rag_prompt(question, passages or None), answer)]
            return dataclasses.replace(conversation, turns=turns, evidence=None)

        def fits(passages: list[str]) -> bool:
            try:
                encoded = encode(build(passages))
            except Exception:  # EncodeError: nothing of the answer fits
                return False
            return not (encoded.dropped_turns or encoded.cut_answer)

        fitted = fit_passages(
            choice.passages,
            choice.gold_position,
            gold_clean.answers[0] if gold_clean else "",
            fits,
            self.config.min_passage_chars,
        )
        if fitted is None:
            counts[f"{RETRIEVAL}/{ANSWER_DOES_NOT_FIT}"] += 1
            return None
        passages, position = fitted
        kind = "squad" if gold is not None else "unlabeled"
        counts[f"{RETRIEVAL}/{kind}_samples"] += 1
        counts[f"{RETRIEVAL}/passages"] += len(passages)
        counts[f"{RETRIEVAL}/trimmed_samples"] += passages != choice.passages
        if gold is not None:
            counts[f"{RETRIEVAL}/gold_bm25_rank/{choice.gold_bm25_rank or 'not_retrieved'}"] += 1
            counts[f"{RETRIEVAL}/{'with_gold' if position is not None else 'without_gold'}"] += 1
            if position is not None:
                counts[f"{RETRIEVAL}/gold_position/{position + 1}"] += 1
        conversation = build(passages)
        return conversation, encode(conversation)


RETRIEVAL = "retrieval"


def retrieval_stats(counters: Iterable[Counter], config: RetrievalConfig) -> dict:
    """stats.json's `retrieval`: the attachers' counts summed over sources, and the settings."""
    total: Counter = Counter()
    for counts in counters:
        total.update({k: v for k, v in counts.items() if k.startswith(f"{RETRIEVAL}/")})
    out: dict = {"gold_position": {}, "gold_bm25_rank": {}}
    for key, value in sorted(total.items()):
        parts = key.split("/")
        if len(parts) == 3:
            out[parts[1]][parts[2]] = value
        else:
            out[parts[1]] = value
    out["settings"] = config.model_dump(mode="json")
    return out


def _cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)
