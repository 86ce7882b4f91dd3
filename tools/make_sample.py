"""Recreate the embedded bilingual sample of tinylm-data, byte for byte.

    uv run python tools/make_sample.py              # rewrite the shipped sample in place
    uv run python tools/make_sample.py --out DIR    # write it elsewhere (the tests compare the two)

The text is composed from the authored sentence pools in tools/sample_pool/ with one seeded RNG,
then written in the real formats of four sources (Dolma json.gz, baike_qa2019 JSON lines, the
zhihu_kol Parquet file, CLUECorpusSmall text). Known problems are planted on top - exact and near
duplicates, junk for each cleaning rule, short and empty documents, bad records - and every one
is listed in planted.json, which packages/tinylm-data/tests/test_sample.py checks against
the files.

Only the data files and planted.json are generated; sample.yaml, README.md and __init__.py
beside them are written by hand.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import emoji
import jieba
import opencc
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from datasketch import MinHash, MinHashLSH

SEED = 20261128
POOL_DIR = Path(__file__).resolve().parent / "sample_pool"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "packages/tinylm-data/src/tinylm_data/sample"

DOLMA_CC0 = "dolma/cc_en_head-0000.json.gz"
DOLMA_CC1 = "dolma/cc_en_head-0001.json.gz"
DOLMA_WIKI = "dolma/wiki_en-0000.json.gz"
BAIKE_TRAIN = "baike_qa/baike_qa_train.json"
BAIKE_VALID = "baike_qa/baike_qa_valid.json"
ZHIHU = "zhihu_kol/train-00000-of-00001.parquet"
CLUE_NEWS = "clue/news2016zh-0001.txt"
CLUE_COMMENTS = "clue/comments2019zh-0001.txt"
FILES = {
    DOLMA_CC0: "dolma",
    DOLMA_CC1: "dolma",
    DOLMA_WIKI: "dolma",
    BAIKE_TRAIN: "baike_qa",
    BAIKE_VALID: "baike_qa",
    ZHIHU: "zhihu_kol",
    CLUE_NEWS: "clue",
    CLUE_COMMENTS: "clue",
}

SOURCE_COUNTS = ("records", "bad_records", "empty", "short", "junk_only")

# Near duplicates must stay well above the 0.8 Jaccard threshold however a dedup stage
# tokenises, so each edited copy is checked under every tokenisation below.
NEAR_MIN_JACCARD = 0.86
SHINGLE = 5
# A base document this close to an earlier one is dropped, so that the only near duplicates
# in the sample are the planted ones.
ACCIDENTAL_MAX_JACCARD = 0.5
# The generator fails if any unplanted pair in the final files reaches this.
UNPLANTED_MAX_JACCARD = 0.7

T2S = opencc.OpenCC("t2s")
S2T = opencc.OpenCC("s2t")
CJK = re.compile(r"[\u4e00-\u9fff]")
# why: a set lookup is ~100x faster than emoji.emoji_count and finds every single-character
# emoji, which covers all the emoji planted here (the tests check with emoji_count itself)
EMOJI_CHARS = frozenset(k for k in emoji.EMOJI_DATA if len(k) == 1)


# ---------------------------------------------------------------------------------------------
# Detectors: what a cleaning rule would find. Base text must trigger none of them.

DETECTORS: dict[str, Callable[[str], bool]] = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+").search,
    "url": re.compile(r"https?://|www\.", re.I).search,
    "ip": re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])").search,
    "phone": re.compile(
        r"(?<!\d)1[3-9]\d{9}(?!\d)|\+1-\d{3}-\d{3}-\d{4}|\(\d{3}\) \d{3}-\d{4}"
    ).search,
    "qq": re.compile(r"qq[^\d\n]{0,4}\d{5,11}", re.I).search,
    "html": re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|&(?:#\d+|[a-zA-Z]+);").search,
    "emoji": lambda text: not EMOJI_CHARS.isdisjoint(text),
    "brackets": re.compile(r"[【】「」『』]").search,
    "punctuation_runs": re.compile(r"([!！?？。.~～])\1{3,}").search,
    "traditional": lambda text: T2S.convert(text) != text,
    "unicode": re.compile(
        r"[\u00a0\u00ad\u200b-\u200f\u2060\ufeff\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
    ).search,
    "whitespace": re.compile(r"[ \t\u3000]{2,}|\r|\n{3,}|[ \t\u3000]\n|^\s|\s$").search,
}


def junk_kinds(text: str) -> list[str]:
    return [kind for kind, found in DETECTORS.items() if found(text)]


# ---------------------------------------------------------------------------------------------
# Similarity: the measures planted.json reports for near duplicates.


def normalized(text: str) -> str:
    """The key exact duplicates share: case folded, whitespace runs collapsed."""
    return " ".join(text.split()).casefold()


def tokens_mixed(text: str) -> list[str]:
    """English words and single CJK characters, punctuation dropped."""
    return re.findall(r"[0-9a-z]+(?:'[a-z]+)?|[\u4e00-\u9fff]", text.casefold())


def tokens_words(text: str) -> list[str]:
    return text.casefold().split()


def tokens_jieba(text: str) -> list[str]:
    return [w for w in jieba.lcut(text.casefold()) if w.strip()]


def word_count(text: str) -> int:
    """Words of English text, non-space characters of Chinese text (a bound on jieba words)."""
    return len(re.sub(r"\s", "", text)) if CJK.search(text) else len(text.split())


def shingles(tokens: list[str], n: int = SHINGLE) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(max(len(tokens) - n + 1, 0))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def similarity(a: str, b: str) -> dict[str, float]:
    measures = {"mixed": tokens_mixed}
    measures["jieba" if CJK.search(a) else "words"] = (
        tokens_jieba if CJK.search(a) else tokens_words
    )
    return {
        name: round(jaccard(shingles(tok(a)), shingles(tok(b))), 4)
        for name, tok in measures.items()
    }


# ---------------------------------------------------------------------------------------------
# The sentence pools.


@dataclass
class Topic:
    name: str
    category: str = ""
    titles: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)


@dataclass
class Pool:
    slots: dict[str, list[str]]
    topics: list[Topic]


def load_pool(path: Path) -> Pool:
    slots: dict[str, list[str]] = {}
    topics: list[Topic] = []
    section = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "[slots]":
            section = "slots"
        elif line.startswith("[topic ") and line.endswith("]"):
            section = "topic"
            topics.append(Topic(name=line[7:-1]))
        elif section == "slots" and "=" in line:
            name, values = line.split("=", 1)
            slots[name.strip()] = [v.strip() for v in values.split("|")]
        elif section == "topic" and line.startswith(("s:", "q:", "title:", "cat:")):
            key, text = line.split(":", 1)
            target = {"s": "sentences", "q": "questions", "title": "titles"}.get(key)
            if target is None:
                topics[-1].category = text.strip()
            else:
                getattr(topics[-1], target).append(text.strip())
        else:
            raise ValueError(f"{path.name}:{number}: cannot parse {raw!r}")
    return Pool(slots, topics)


class Composer:
    """Composes natural-looking documents from one language's pool."""

    NUMERIC: dict[str, tuple[int, int]] = {
        "num": (2, 40),
        "big": (120, 9800),
        "year": (1820, 2022),
        "pct": (5, 95),
        "minutes": (5, 90),
        "temp": (140, 240),
    }

    def __init__(self, pool: Pool, rng: random.Random, lang: str) -> None:
        self.pool, self.rng, self.lang = pool, rng, lang
        self.joiner = " " if lang == "en" else ""

    def fill(self, template: str, binding: dict[str, str]) -> str:
        def value(match: re.Match) -> str:
            slot = match.group(1)
            if slot not in binding:
                if slot in self.NUMERIC:
                    binding[slot] = str(self.rng.randint(*self.NUMERIC[slot]))
                else:
                    binding[slot] = self.rng.choice(self.pool.slots[slot])
            return binding[slot]

        text = re.sub(r"\{(\w+)\}", value, template)
        if self.lang == "en" and text[:1].islower():
            text = text[0].upper() + text[1:]
        return text

    def topic(self) -> Topic:
        return self.rng.choice(self.pool.topics)

    def sentences(self, topic: Topic, count: int, binding: dict[str, str]) -> list[str]:
        picked = self.rng.sample(topic.sentences, min(count, len(topic.sentences)))
        return [
            self.fill(self.with_opener(s) if i and self.rng.random() < 0.2 else s, binding)
            for i, s in enumerate(picked)
        ]

    def with_opener(self, template: str) -> str:
        """The template led in by a connective ("In fact, ...", "其实，..."), for variety."""
        if template.startswith("{"):  # a name or place: keep its capital, skip the opener
            return template
        opener = self.rng.choice(self.pool.slots["opener"])
        if self.lang == "en":
            return f"{opener} {template[0].lower()}{template[1:]}"
        return opener + template

    def paragraphs(self, sentences: list[str], low: int = 2, high: int = 5) -> list[str]:
        out, i = [], 0
        while i < len(sentences):
            step = self.rng.randint(low, high)
            out.append(self.joiner.join(sentences[i : i + step]))
            i += step
        return out

    def sections(
        self, count: int, first: Topic | None = None
    ) -> Iterator[tuple[Topic, dict[str, str], list[str]]]:
        """Sentences grouped by topic; each section draws a topic's sentences without repeats."""
        topic = first or self.topic()
        while count > 0:
            size = min(count, self.rng.randint(6, len(topic.sentences)))
            binding: dict[str, str] = {}
            yield topic, binding, self.sentences(topic, size, binding)
            count -= size
            topic = self.topic()

    def length(self, median: float, sigma: float, low: int, high: int) -> int:
        return max(low, min(high, round(self.rng.lognormvariate(math.log(median), sigma))))


# ---------------------------------------------------------------------------------------------
# Records: one line (or row) of an output file, with what was planted in it.


@dataclass
class Record:
    file: str
    payload: (
        Any  # dict for JSON/Parquet records, str or bytes for a text line, str for a bad JSON line
    )
    tags: dict[str, Any] = field(default_factory=dict)
    uid: int = 0

    @property
    def source(self) -> str:
        return FILES[self.file]


def record_text(source: str, payload: Any) -> str | None:
    """The text a document of this record is made of; None for a bad record."""
    if isinstance(payload, bytes):
        return None
    if isinstance(payload, str):
        return payload if source == "clue" else None
    if source == "dolma":
        text = payload.get("text")
    elif source == "baike_qa":
        parts = [payload.get(k) for k in ("title", "desc", "answer")]
        text = "\n".join(parts) if all(isinstance(p, str) for p in parts) else None
    else:
        parts = [payload.get(k) for k in ("INSTRUCTION", "RESPONSE")]
        text = "\n".join(parts) if all(isinstance(p, str) for p in parts) else None
    return text if isinstance(text, str) else None


class Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.en = Composer(load_pool(POOL_DIR / "en.txt"), self.rng, "en")
        self.zh = Composer(load_pool(POOL_DIR / "zh.txt"), self.rng, "zh")
        self.files: dict[str, list[Record]] = {name: [] for name in FILES}
        self.used_ids: set[str] = set()
        self.next_uid = 0
        self.groups: list[dict[str, Any]] = []
        self.clusters: list[dict[str, Any]] = []

    # -- identifiers and record shapes -------------------------------------------------------

    def new_id(self, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def dolma_id(self) -> str:
        alphabet = string.ascii_lowercase + "234567"
        return self.new_id(lambda: "".join(self.rng.choices(alphabet, k=32)))

    def timestamp(self, year_low: int, year_high: int) -> str:
        r = self.rng
        return (
            f"{r.randint(year_low, year_high)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
            f"T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d}Z"
        )

    def dolma_record(self, file: str, text: str, title: str) -> dict[str, Any]:
        slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-") or "page"
        if file == DOLMA_WIKI:
            source, metadata = "wikipedia", {"title": title, "length": len(text)}
        else:
            source = "common-crawl"
            metadata = {
                "url": f"https://{self.rng.choice(['blog', 'news', 'www', 'forum'])}.example.com/{slug}",
                "language": "en",
                "language_score": round(self.rng.uniform(0.86, 0.99), 4),
            }
        return {
            "id": self.dolma_id(),
            "text": text,
            "source": source,
            "added": self.timestamp(2023, 2024),
            "created": self.timestamp(2017, 2022),
            "metadata": metadata,
        }

    def baike_record(self, category: str, title: str, desc: str, answer: str) -> dict[str, Any]:
        qid = self.new_id(lambda: f"qid_{self.rng.randint(10**18, 10**19 - 1)}")
        return {"qid": qid, "category": category, "title": title, "desc": desc, "answer": answer}

    def zhihu_record(self, question: str, answer: str) -> dict[str, Any]:
        meta = {
            "question_id": int(self.new_id(lambda: str(self.rng.randint(10**7, 10**9)))),
            "answer_id": int(self.new_id(lambda: str(self.rng.randint(10**8, 10**10)))),
            "upvotes": f"赞同 {self.rng.randint(0, 5000)}",
            "answer_creation_time": self.timestamp(2018, 2023)[:10],
        }
        return {
            "INSTRUCTION": question,
            "RESPONSE": answer,
            "SOURCE": "Zhihu",
            "METADATA": json.dumps(meta, ensure_ascii=False),
        }

    def record(self, file: str, payload: Any, **tags: Any) -> Record:
        self.next_uid += 1
        return Record(file, payload, dict(tags), self.next_uid)

    # -- base documents ---------------------------------------------------------------------

    def en_document(self, median: float, sigma: float, high: int, with_title: float) -> dict:
        c = self.en
        count = c.length(median, sigma, 3, high)
        parts, title = [], ""
        for i, (topic, binding, sentences) in enumerate(c.sections(count)):
            heading = c.fill(c.rng.choice(topic.titles), binding)
            if i == 0:
                title = heading
                if c.rng.random() < with_title:
                    parts.append(heading)
            else:
                parts.append(heading)
            parts.extend(c.paragraphs(sentences))
        return {"title": title, "text": "\n\n".join(parts)}

    def en_long_document(self) -> dict:
        c = self.en
        topics = c.rng.sample(c.pool.topics, len(c.pool.topics))
        parts, title = [], ""
        for topic in topics[: c.rng.randint(8, 13)]:
            binding: dict[str, str] = {}
            heading = c.fill(c.rng.choice(topic.titles), binding)
            title = title or heading
            parts.append(heading)
            count = c.rng.randint(14, len(topic.sentences))
            parts.extend(c.paragraphs(c.sentences(topic, count, binding), 3, 6))
        return {"title": title, "text": "\n\n".join(parts)}

    def en_single_paragraph(self) -> dict:
        c = self.en
        topic = c.topic()
        binding: dict[str, str] = {}
        sentences = c.sentences(topic, c.rng.randint(8, 14), binding)
        return {"title": c.fill(topic.titles[0], binding), "text": " ".join(sentences)}

    def zh_answer(self, median: float, sigma: float, high: int, joiner: str) -> tuple:
        c = self.zh
        count = c.length(median, sigma, 2, high)
        sections = list(c.sections(count))
        topic, binding, _ = sections[0]
        question = c.fill(c.rng.choice(topic.questions), binding)
        paragraphs = [p for _, _, sentences in sections for p in c.paragraphs(sentences, 1, 4)]
        return topic, question, joiner.join(paragraphs)

    def zh_long_text(self, joiner: str) -> tuple:
        c = self.zh
        topics = c.rng.sample(c.pool.topics, len(c.pool.topics))
        paragraphs, question = [], ""
        for topic in topics[: c.rng.randint(8, 13)]:
            binding: dict[str, str] = {}
            question = question or c.fill(c.rng.choice(topic.questions), binding)
            count = c.rng.randint(14, len(topic.sentences))
            paragraphs.extend(c.paragraphs(c.sentences(topic, count, binding), 3, 6))
        return topics[0], question, joiner.join(paragraphs)

    def build_base(self) -> None:
        for file, count, median in ((DOLMA_CC0, 740, 5), (DOLMA_CC1, 740, 5), (DOLMA_WIKI, 200, 9)):
            for _ in range(count):
                doc = self.en_document(median, 0.8, 90, 0.6 if file != DOLMA_WIKI else 1.0)
                self.files[file].append(self.record(file, self.dolma_record(file, **doc)))
        for _ in range(12):
            doc = self.en_long_document()
            self.files[DOLMA_WIKI].append(
                self.record(DOLMA_WIKI, self.dolma_record(DOLMA_WIKI, **doc), long=True)
            )
        for file, count in ((BAIKE_TRAIN, 700), (BAIKE_VALID, 100)):
            for _ in range(count):
                topic, question, answer = self.zh_answer(4, 0.7, 40, "\n")
                desc = ""
                if self.rng.random() < 0.3:
                    desc = self.zh.fill(self.rng.choice(topic.sentences), {})
                rec = self.baike_record(topic.category, question, desc, answer)
                self.files[file].append(self.record(file, rec))
        for i in range(560):
            if i % 100 == 7:
                _, question, answer = self.zh_long_text("\n\n")
                tags = {"long": True}
            else:
                _, question, answer = self.zh_answer(7, 0.8, 80, "\n\n")
                tags = {}
            self.files[ZHIHU].append(
                self.record(ZHIHU, self.zhihu_record(question, answer), **tags)
            )
        for i in range(360):
            if i % 100 == 50:
                _, _, text = self.zh_long_text("")
                self.files[CLUE_NEWS].append(self.record(CLUE_NEWS, text, long=True))
            else:
                _, _, text = self.zh_answer(6, 0.6, 60, "")
                self.files[CLUE_NEWS].append(self.record(CLUE_NEWS, text))
        for _ in range(340):
            _, _, text = self.zh_answer(3, 0.4, 6, "")
            self.files[CLUE_COMMENTS].append(self.record(CLUE_COMMENTS, text))
        self.drop_accidental_duplicates()

    def all_records(self) -> Iterator[Record]:
        for records in self.files.values():
            yield from records

    def drop_accidental_duplicates(self) -> None:
        """Remove base documents that happen to be exact or near copies of an earlier one."""
        seen: set[str] = set()
        lsh = MinHashLSH(threshold=ACCIDENTAL_MAX_JACCARD, num_perm=64)
        kept_shingles: dict[int, set] = {}
        for file, records in self.files.items():
            kept = []
            for rec in records:
                text = record_text(rec.source, rec.payload)
                assert text is not None and not junk_kinds(text), (rec.file, junk_kinds(text))
                key = normalized(text)
                sh = shingles(tokens_mixed(text))
                mh = minhash(sh)
                near = [
                    uid
                    for uid in sorted(lsh.query(mh))
                    if jaccard(sh, kept_shingles[uid]) >= ACCIDENTAL_MAX_JACCARD
                ]
                if key in seen or near:
                    continue
                seen.add(key)
                lsh.insert(rec.uid, mh)
                kept_shingles[rec.uid] = sh
                kept.append(rec)
            self.files[file] = kept

    # -- planting ----------------------------------------------------------------------------

    def fresh(self, file: str, min_chars: int = 0, max_chars: int = 10**9) -> Record:
        """A base record of `file` that nothing has been planted in yet."""
        candidates = [
            r
            for r in self.files[file]
            if not r.tags and min_chars <= len(record_text(r.source, r.payload) or "") <= max_chars
        ]
        rec = self.rng.choice(candidates)
        rec.tags["reserved"] = True
        return rec

    def insert(self, rec: Record) -> None:
        records = self.files[rec.file]
        records.insert(self.rng.randint(0, len(records)), rec)

    def copy_payload(self, rec: Record, file: str, edit: Callable[[str], str]) -> Any:
        """The same document as `rec`, in `file`'s format, its text passed through `edit`."""
        src = rec.payload
        if FILES[file] == "clue":
            return edit(record_text(rec.source, src))
        if FILES[file] == "dolma":
            title = src["metadata"].get("title", src["metadata"].get("url", "").rsplit("/", 1)[-1])
            return self.dolma_record(file, edit(src["text"]), title)
        if FILES[file] == "baike_qa":
            return self.baike_record(
                src["category"], src["title"], src["desc"], edit(src["answer"])
            )
        return self.zhihu_record(src["INSTRUCTION"], edit(src["RESPONSE"]))

    def plant_exact(
        self, kind: str, origin: str, targets: list[str], origin_rec: Record | None = None
    ) -> None:
        rec = origin_rec or self.fresh(origin, 200 if origin.startswith("dolma") else 80, 3000)
        edit = {
            "identical": lambda t: t,
            "whitespace": self.whitespace_variant,
            "case_upper": str.upper,
            "case_lower": str.lower,
        }[kind]
        group = len(self.groups)
        rec.tags["exact"] = group
        members = [rec]
        for target in targets:
            copy = self.record(target, self.copy_payload(rec, target, edit), exact=group)
            if kind == "whitespace":
                copy.tags["junk"] = ["whitespace"]
            self.insert(copy)
            members.append(copy)
        self.groups.append({"kind": kind, "members": members})

    def whitespace_variant(self, text: str) -> str:
        if "\n" not in text:  # one line (clue): indents and doubled spaces only
            if CJK.search(text):  # no spaces inside Chinese text to widen: indent and pad
                return "\u3000\u3000" + text + "  "
            return "  " + text.replace(". ", ".  ", 2) + " "
        return text.replace("\n\n", "\n \n\n", 1).replace("\n", "\r\n") + "  \n"

    def plant_near(self, origin: str, targets: list[str], origin_rec: Record | None = None) -> None:
        rec = origin_rec or self.fresh(origin, 1500 if origin.startswith("dolma") else 400)
        cluster = len(self.clusters)
        rec.tags["near"] = cluster
        base = record_text(rec.source, rec.payload)
        members, scores = [rec], []
        for target in targets:
            payload, score = self.near_copy(rec, target, base)
            copy = self.record(target, payload, near=cluster)
            self.insert(copy)
            members.append(copy)
            scores.append(score)
        worst = {k: min(s[k] for s in scores) for k in scores[0]}
        self.clusters.append({"members": members, "min_jaccard": worst})

    def near_copy(self, rec: Record, target: str, base: str) -> tuple[Any, dict[str, float]]:
        for edits in range(4, 0, -1):
            payload = self.copy_payload(rec, target, lambda t, e=edits: self.edit_words(t, e))
            text = record_text(FILES[target], payload)
            score = similarity(base, text)
            if normalized(text) != normalized(base) and min(score.values()) >= NEAR_MIN_JACCARD:
                return payload, score
        raise AssertionError(f"no near copy of {rec.file} stays above {NEAR_MIN_JACCARD}")

    EN_SWAPS = [
        "quietly",
        "several",
        "bright",
        "narrow",
        "later",
        "careful",
        "local",
        "early",
        "often",
        "gentle",
    ]
    ZH_SWAPS = "新旧大小多少早晚冷热高低远近快慢轻重"

    def edit_words(self, text: str, edits: int) -> str:
        chars = list(text)
        if CJK.search(text):
            spots = [m.start() for m in CJK.finditer(text)]
            for pos in self.rng.sample(spots, edits):
                chars[pos] = self.rng.choice([c for c in self.ZH_SWAPS if c != chars[pos]])
            return "".join(chars)
        words = list(re.finditer(r"\b[a-z]{5,}\b", text))
        for match in sorted(self.rng.sample(words, edits), key=lambda m: -m.start()):
            swap = self.rng.choice([w for w in self.EN_SWAPS if w != match.group()])
            chars[match.start() : match.end()] = swap
        return "".join(chars)

    # -- junk --------------------------------------------------------------------------------

    def junk_snippet(self, kind: str, zh: bool) -> tuple[str, list[str]]:
        """A piece of junk of `kind` and every kind it triggers."""
        r = self.rng
        user = r.choice(
            ["maria.lopez", "j.chen", "info", "contact", "lihua2019", "travel.notes", "editor"]
        )
        slug = r.choice(["notes", "archive/2019/06", "post-1182", "story/garden-diary", "p/7741"])
        ip = ".".join(str(r.randint(1, 254)) for _ in range(4))
        digits = "".join(r.choices(string.digits, k=8))
        if kind == "email":
            s = (
                f"有问题欢迎发邮件到{user}@example.com交流。"
                if zh
                else f"Questions? Write to {user}@example.org."
            )
        elif kind == "url":
            s = r.choice(
                [
                    f"原文链接：https://www.example.com/{slug}",
                    f"更多内容请访问 http://bbs.example.net/{slug}",
                ]
                if zh
                else [
                    f"Read the full story at https://www.example.com/{slug}",
                    f"More photos on www.example.net/{slug}",
                ]
            )
        elif kind == "ip":
            s = f"服务器地址：{ip}。" if zh else f"The mirror at {ip} was down for most of the day."
        elif kind == "phone":
            mobile = f"1{r.randint(3, 9)}{r.randint(0, 9)}{digits}"
            s = (
                f"联系电话：{mobile}。"
                if zh
                else r.choice(
                    [f"Call us on +1-202-555-{digits[:4]}.", f"Bookings: (415) 555-{digits[:4]}."]
                )
            )
        elif kind == "qq":
            s = r.choice(
                [
                    f"有兴趣的朋友可以加我QQ：{r.randint(10**5, 10**9)}。",
                    f"交流群QQ号{r.randint(10**5, 10**9)}，欢迎加入。",
                ]
            )
        elif kind == "html":
            s = r.choice(["<br/>", "<p>", "&nbsp;", "<b>", "&amp;", "</div>"])
        elif kind == "emoji":
            s = r.choice(["😂", "👍", "🙏", "🔥", "🎉", "😊", "🌸", "☕"])
        elif kind == "brackets":
            s = r.choice(["【原创】", "【转载】", "【图】", "「重要」", "『干货』"])
        elif kind == "punctuation_runs":
            s = r.choice(
                ["！！！！", "。。。。。。", "？？？？"] if zh else ["!!!!", "?????", "!!!!!!"]
            )
        elif kind == "unicode":
            s = r.choice(["\u200b", "\u00a0", "\ufeff", "ＡＰＰ", "ＷｉＦｉ"])
        else:
            raise ValueError(kind)
        return s, junk_kinds(f"x{s}x")  # in context: a lone no-break space is not edge whitespace

    def plant_junk(self, file: str, count: int, kinds: list[str]) -> None:
        zh = FILES[file] != "dolma"
        for i in range(count):
            rec = self.fresh(file, 150 if file.startswith("dolma") else 60)
            chosen = [kinds[i % len(kinds)]]
            if self.rng.random() < 0.35:
                chosen.append(self.rng.choice(kinds))
            field_name = {"dolma": "text", "baike_qa": "answer", "zhihu_kol": "RESPONSE"}.get(
                rec.source
            )
            text = rec.payload if field_name is None else rec.payload[field_name]
            found: list[str] = []
            for kind in dict.fromkeys(chosen):
                if kind == "traditional":
                    text = S2T.convert(text)
                    found.append(kind)
                elif kind == "whitespace":
                    text = self.whitespace_variant(text)
                    found.append(kind)
                else:
                    for _ in range(self.rng.randint(1, 2)):
                        snippet, triggers = self.junk_snippet(kind, zh)
                        text = self.insert_snippet(text, snippet, zh)
                        found.extend(triggers)
            if field_name is None:
                rec.payload = text
            else:
                rec.payload[field_name] = text
            rec.tags["junk"] = sorted(set(found))

    def insert_snippet(self, text: str, snippet: str, zh: bool) -> str:
        ends = [m.end() for m in re.finditer("。" if zh else r"\. ", text) if m.end() < len(text)]
        pos = self.rng.choice(ends) if ends else len(text)
        if not zh and snippet[:1].isalpha():
            snippet = snippet + " "
        return text[:pos] + snippet + text[pos:]

    def plant_junk_only(self, file: str, text: str) -> None:
        payload: Any = text
        if FILES[file] == "baike_qa":
            payload = self.baike_record("商业/理财-广告", "【推广】", "", text)
        elif FILES[file] == "dolma":
            payload = self.dolma_record(file, text, "contact")
        rec = self.record(
            file, payload, junk=junk_kinds(record_text(FILES[file], payload)), junk_only=True
        )
        self.insert(rec)

    # -- short, empty, bad -------------------------------------------------------------------

    EN_SHORT = [
        "Thanks for reading.",
        "Page not found.",
        "Subscribe to our newsletter for weekly recipes.",
        "Comments are closed.",
        "Photo by the author.",
        "All rights reserved.",
        "Back to top",
        "Share this story with a friend.",
        "Loading, please wait",
        "This post has been removed.",
        "Next chapter coming soon.",
        "Previous article",
    ]
    ZH_SHORT = [
        "谢谢分享",
        "顶一下",
        "同问",
        "楼主说得对",
        "沙发",
        "学习了",
        "已收藏，慢慢看。",
        "mark一下",
        "求下文",
        "支持！",
        "好文",
        "赞",
    ]

    def plant_short_and_empty(self) -> None:
        for text in self.EN_SHORT[:8]:
            self.insert(
                self.record(DOLMA_CC0, self.dolma_record(DOLMA_CC0, text, text), short=True)
            )
        for text in self.EN_SHORT[8:]:
            self.insert(
                self.record(DOLMA_CC1, self.dolma_record(DOLMA_CC1, text, text), short=True)
            )
        for text in ("", "\n\n  \n"):
            self.insert(
                self.record(DOLMA_CC1, self.dolma_record(DOLMA_CC1, text, "empty"), empty=True)
            )
        zh = iter(self.ZH_SHORT)
        for title, answer in (("求助", next(zh)), ("请问", next(zh)), ("如题", next(zh))):
            self.insert(
                self.record(BAIKE_TRAIN, self.baike_record("其他", title, "", answer), short=True)
            )
        self.insert(self.record(BAIKE_TRAIN, self.baike_record("其他", "", "", ""), empty=True))
        for question, answer in (
            ("好吃吗？", next(zh)),
            ("有用吗", next(zh)),
            ("怎么样", next(zh)),
        ):
            self.insert(self.record(ZHIHU, self.zhihu_record(question, answer), short=True))
        self.insert(self.record(ZHIHU, self.zhihu_record("", "  "), empty=True))
        for file in (
            CLUE_NEWS,
            CLUE_COMMENTS,
            CLUE_COMMENTS,
            CLUE_COMMENTS,
            CLUE_NEWS,
            CLUE_COMMENTS,
        ):
            self.insert(self.record(file, next(zh), short=True))
        self.insert(self.record(CLUE_COMMENTS, "   ", empty=True))

    def plant_bad(self) -> None:
        good = json.dumps(
            self.dolma_record(DOLMA_CC0, "A line cut off in the middle of a word", "cut")
        )
        self.insert(self.record(DOLMA_CC0, good[: len(good) // 2], bad="malformed_json"))
        missing = self.dolma_record(DOLMA_CC1, "", "missing")
        del missing["text"]
        self.insert(self.record(DOLMA_CC1, missing, bad="missing_text"))
        for value, file in ((None, DOLMA_WIKI), (42, DOLMA_CC0)):
            rec = self.dolma_record(file, "", "odd")
            rec["text"] = value
            self.insert(self.record(file, rec, bad="non_string_text"))
        line = json.dumps(
            self.baike_record("其他", "坏掉的一行", "", "这一行没有写完"), ensure_ascii=False
        )
        self.insert(self.record(BAIKE_TRAIN, line[:-9], bad="malformed_json"))
        rec = self.baike_record("其他", "答案是空值", "", "")
        rec["answer"] = None
        self.insert(self.record(BAIKE_TRAIN, rec, bad="non_string_text"))
        rec = self.baike_record("其他", "没有答案字段", "", "")
        del rec["answer"]
        self.insert(self.record(BAIKE_VALID, rec, bad="missing_text"))
        rec = self.zhihu_record("这个问题的回答丢失了", "")
        rec["RESPONSE"] = None
        self.insert(self.record(ZHIHU, rec, bad="non_string_text"))
        broken = "这一行的编码损坏了，无法按 UTF-8 解码。".encode()
        self.insert(
            self.record(CLUE_NEWS, broken[:10] + b"\xff\xfe" + broken[10:], bad="invalid_utf8")
        )

    def plant_all(self) -> None:
        # Exact duplicates: identical copies, whitespace and case variants, within a file,
        # across files of a source and across sources (English lines do occur in CLUECorpus).
        plan = [
            ("identical", DOLMA_CC0, [DOLMA_CC0]),
            ("identical", DOLMA_CC0, [DOLMA_CC0, DOLMA_CC0]),
            ("identical", DOLMA_CC1, [DOLMA_CC1]),
            ("identical", DOLMA_CC0, [DOLMA_CC1]),
            ("identical", DOLMA_CC1, [DOLMA_WIKI]),
            ("whitespace", DOLMA_CC0, [DOLMA_CC1]),
            ("whitespace", DOLMA_WIKI, [DOLMA_WIKI]),
            ("case_upper", DOLMA_CC0, [DOLMA_CC0]),
            ("case_lower", DOLMA_CC1, [DOLMA_CC0]),
            ("identical", BAIKE_TRAIN, [BAIKE_TRAIN]),
            ("identical", BAIKE_TRAIN, [BAIKE_TRAIN, BAIKE_TRAIN]),
            ("identical", BAIKE_TRAIN, [BAIKE_VALID]),
            ("whitespace", BAIKE_TRAIN, [BAIKE_TRAIN]),
            ("identical", ZHIHU, [ZHIHU]),
            ("identical", ZHIHU, [ZHIHU]),
            ("whitespace", ZHIHU, [ZHIHU]),
            ("identical", CLUE_NEWS, [CLUE_NEWS]),
            ("identical", CLUE_COMMENTS, [CLUE_COMMENTS]),
            ("identical", CLUE_NEWS, [CLUE_COMMENTS]),
            ("whitespace", CLUE_NEWS, [CLUE_NEWS]),
        ]
        for kind, origin, targets in plan:
            self.plant_exact(kind, origin, targets)
        for kind, origin, target in (
            ("identical", DOLMA_CC0, CLUE_NEWS),
            ("whitespace", DOLMA_CC1, CLUE_COMMENTS),
        ):
            rec = self.record(origin, self.dolma_record(origin, **self.en_single_paragraph()))
            self.insert(rec)
            self.plant_exact(kind, origin, [target], origin_rec=rec)

        for origin, targets in (
            (DOLMA_CC0, [DOLMA_CC0]),
            (DOLMA_CC0, [DOLMA_CC1]),
            (DOLMA_CC1, [DOLMA_CC1, DOLMA_CC0]),
            (DOLMA_WIKI, [DOLMA_WIKI]),
            (BAIKE_TRAIN, [BAIKE_TRAIN]),
            (BAIKE_TRAIN, [BAIKE_VALID]),
            (ZHIHU, [ZHIHU]),
            (ZHIHU, [ZHIHU, ZHIHU]),
            (CLUE_NEWS, [CLUE_NEWS]),
            (CLUE_NEWS, [CLUE_COMMENTS]),
        ):
            self.plant_near(origin, targets)
        rec = self.record(DOLMA_CC1, self.dolma_record(DOLMA_CC1, **self.en_single_paragraph()))
        self.insert(rec)
        self.plant_near(DOLMA_CC1, [CLUE_NEWS], origin_rec=rec)

        en_kinds = [
            "email",
            "url",
            "ip",
            "phone",
            "html",
            "emoji",
            "punctuation_runs",
            "unicode",
            "whitespace",
        ]
        zh_kinds = en_kinds[:4] + [
            "qq",
            "html",
            "emoji",
            "brackets",
            "punctuation_runs",
            "traditional",
            "unicode",
            "whitespace",
        ]
        for file, count in ((DOLMA_CC0, 30), (DOLMA_CC1, 24), (DOLMA_WIKI, 9)):
            self.plant_junk(file, count, en_kinds)
        for file, count in (
            (BAIKE_TRAIN, 34),
            (BAIKE_VALID, 6),
            (ZHIHU, 30),
            (CLUE_NEWS, 24),
            (CLUE_COMMENTS, 18),
        ):
            self.plant_junk(file, count, zh_kinds)
        self.plant_junk_only(
            CLUE_COMMENTS, "【广告】加QQ：20190311 或访问 http://shop.example.com 了解详情！！！！"
        )
        self.plant_junk_only(CLUE_NEWS, "<p>&nbsp;</p> 联系电话：13912345678 😂")
        self.plant_junk_only(BAIKE_TRAIN, "有需要的加QQ：88886666，或者发邮件到 sales@example.com")
        self.plant_junk_only(
            DOLMA_CC0,
            "<div>Contact the editor at editor@example.org or visit https://www.example.com/contact for details</div>",
        )

        self.plant_short_and_empty()
        self.plant_bad()

    # -- checks, output ----------------------------------------------------------------------

    def verify(self) -> None:
        """Every near or exact duplicate in the final files must be a planted one.

        The LSH threshold sits well below UNPLANTED_MAX_JACCARD so that pairs above it are
        found with high probability (64 permutations give a rough estimate only).
        """
        lsh = MinHashLSH(threshold=0.5, num_perm=64)
        shingle_sets: dict[int, set] = {}
        by_uid: dict[int, Record] = {}
        for rec in self.all_records():
            text = record_text(rec.source, rec.payload)
            by_uid[rec.uid] = rec
            expected = set(rec.tags.get("junk", []))
            if text is None or not text.strip():
                continue
            assert set(junk_kinds(text)) == expected, (rec.file, rec.tags, junk_kinds(text))
            assert rec.tags.get("short", False) == (word_count(text) < 10), (rec.file, text)
            sh = shingles(tokens_mixed(text))
            if len(sh) < 20:
                continue
            mh = minhash(sh)
            for uid in sorted(lsh.query(mh)):
                other = by_uid[uid]
                if jaccard(sh, shingle_sets[uid]) < UNPLANTED_MAX_JACCARD:
                    continue
                same = any(
                    k in rec.tags and rec.tags[k] == other.tags.get(k) for k in ("exact", "near")
                )
                assert same, (
                    f"unplanted duplicate: {rec.file} {rec.tags} ~ {other.file} {other.tags}"
                )
            lsh.insert(rec.uid, mh)
            shingle_sets[rec.uid] = sh

    def locator(self, rec: Record, index: int) -> dict[str, Any]:
        loc: dict[str, Any] = {"file": rec.file}
        loc["row" if rec.file.endswith(".parquet") else "line"] = (
            index if rec.file.endswith(".parquet") else index + 1
        )
        if isinstance(rec.payload, dict) and ("id" in rec.payload or "qid" in rec.payload):
            loc["id"] = rec.payload.get("id", rec.payload.get("qid"))
        return loc

    def planted(self, out: Path) -> dict[str, Any]:
        locs = {
            rec.uid: self.locator(rec, index)
            for records in self.files.values()
            for index, rec in enumerate(records)
        }
        by_tag: dict[str, list[dict]] = {}
        junk: dict[str, list[dict]] = {kind: [] for kind in DETECTORS}
        texts = []
        for rec in self.all_records():
            for tag in ("short", "empty", "long", "junk_only"):
                if rec.tags.get(tag):
                    by_tag.setdefault(tag, []).append(locs[rec.uid])
            for kind in rec.tags.get("junk", []):
                junk[kind].append(locs[rec.uid])
            if "bad" in rec.tags:
                by_tag.setdefault("bad", []).append({**locs[rec.uid], "reason": rec.tags["bad"]})
            text = record_text(rec.source, rec.payload)
            if text is not None:
                texts.append(text)
        by_source: dict[str, dict[str, int]] = {}
        for rec in self.all_records():
            counts = by_source.setdefault(rec.source, dict.fromkeys(SOURCE_COUNTS, 0))
            counts["records"] += 1
            counts["bad_records"] += "bad" in rec.tags
            for tag in ("empty", "short", "junk_only"):
                counts[tag] += bool(rec.tags.get(tag))
        zh_chars = sum(len(t) for t in texts if CJK.search(t))
        en_chars = sum(len(t) for t in texts if not CJK.search(t))
        groups = [
            {"kind": g["kind"], "members": [locs[m.uid] for m in g["members"]]} for g in self.groups
        ]
        clusters = [
            {"min_jaccard": c["min_jaccard"], "members": [locs[m.uid] for m in c["members"]]}
            for c in self.clusters
        ]
        return {
            "about": "Everything planted in this sample; tests/test_sample.py checks it against the files.",
            "generator": "tools/make_sample.py",
            "seed": SEED,
            "record_text": {
                "dolma": "text",
                "baike_qa": "title + '\\n' + desc + '\\n' + answer",
                "zhihu_kol": "INSTRUCTION + '\\n' + RESPONSE",
                "clue": "the line without its newline",
            },
            "locators": "line: 1-based line of a text/JSON-lines file; row: 0-based row of a Parquet file",
            "files": {
                name: {
                    "source": FILES[name],
                    "records": len(records),
                    "bytes": (out / name).stat().st_size,
                }
                for name, records in self.files.items()
            },
            "totals": {
                "records": sum(len(r) for r in self.files.values()),
                "documents": len(texts),
                "bad_records": len(by_tag.get("bad", [])),
                "text_chars": {"en": en_chars, "zh": zh_chars},
                "text_bytes": sum(len(t.encode()) for t in texts),
                "by_source": by_source,
                "documents_left": {
                    "note": "documents that survive when every stage removes exactly what was "
                    "planted: minus empty, short and junk-only documents (the filters, after "
                    "cleaning), minus the redundant copies of exact and near duplicates (global scope)",
                    "count": len(texts)
                    - len(by_tag.get("empty", []))
                    - len(by_tag.get("short", []))
                    - len(by_tag.get("junk_only", []))
                    - sum(len(g["members"]) - 1 for g in groups)
                    - sum(len(c["members"]) - 1 for c in clusters),
                },
            },
            "exact_duplicates": {
                "key": "text case folded, whitespace runs collapsed to one space, stripped; empty texts excluded",
                "num_groups": len(groups),
                "num_redundant": sum(len(g["members"]) - 1 for g in groups),
                "groups": groups,
            },
            "near_duplicates": {
                "measure": "Jaccard of 5-token shingles; tokens: mixed = English words and single CJK characters, words = whitespace split, jieba = jieba words (Chinese)",
                "guarantee": "apart from exact duplicates and these clusters, no two documents "
                f"reach a Jaccard of {UNPLANTED_MAX_JACCARD} on mixed-token shingles (checked "
                "by MinHash LSH in the generator)",
                "num_clusters": len(clusters),
                "num_redundant": sum(len(c["members"]) - 1 for c in clusters),
                "clusters": clusters,
            },
            "junk": {
                "note": "documents containing each kind; a document may hold several kinds",
                "counts": {kind: len(v) for kind, v in junk.items()},
                "documents": junk,
                "junk_only": by_tag.get("junk_only", []),
            },
            "short": {
                "note": "fewer than 10 words (English) or 10 characters (Chinese)",
                "documents": by_tag.get("short", []),
            },
            "empty": {"documents": by_tag.get("empty", [])},
            "bad_records": by_tag.get("bad", []),
            "long": {
                "note": "multi-topic documents several thousand tokens long",
                "documents": by_tag.get("long", []),
            },
        }

    def write(self, out: Path) -> None:
        for name, records in self.files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            source = FILES[name]
            if source == "zhihu_kol":
                write_parquet(path, [r.payload for r in records])
            elif source == "clue":
                lines = [
                    r.payload if isinstance(r.payload, bytes) else r.payload.encode()
                    for r in records
                ]
                path.write_bytes(b"".join(line + b"\n" for line in lines))
            else:
                lines = [json_line(source, r.payload) for r in records]
                data = "".join(line + "\n" for line in lines).encode()
                path.write_bytes(gzip_bytes(data) if name.endswith(".gz") else data)
        planted = self.planted(out)
        text = json.dumps(planted, ensure_ascii=False, indent=1) + "\n"
        (out / "planted.json").write_text(text, encoding="utf-8")


_TEMPLATE = MinHash(num_perm=64, seed=1, hashfunc=xxhash.xxh32_intdigest)


def minhash(sh: set) -> MinHash:
    # why: reusing the permutations skips regenerating them for every document
    mh = MinHash(
        num_perm=64,
        hashfunc=xxhash.xxh32_intdigest,
        permutations=_TEMPLATE.permutations,
        scheme=_TEMPLATE.scheme,
    )
    mh.update_batch([" ".join(s).encode() for s in sh])
    return mh


def json_line(source: str, payload: Any) -> str:
    if isinstance(payload, str):  # a deliberately broken line
        return payload
    if source == "dolma":
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(payload, ensure_ascii=False)


def gzip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # why: mtime=0 and no file name in the header keep the bytes identical across runs
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as fh:
        fh.write(data)
    return buffer.getvalue()


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = ["INSTRUCTION", "RESPONSE", "SOURCE", "METADATA"]
    table = pa.table({c: pa.array([row[c] for row in rows], type=pa.string()) for c in columns})
    pq.write_table(table, path, compression="zstd", compression_level=9, row_group_size=256)


def build(out: Path, seed: int = SEED) -> dict[str, Any]:
    """Write the sample's data files and planted.json into `out`; returns planted.json's content."""
    jieba.setLogLevel(60)
    builder = Builder(seed)
    builder.build_base()
    builder.plant_all()
    builder.verify()
    out.mkdir(parents=True, exist_ok=True)
    builder.write(out)
    return json.loads((out / "planted.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: the shipped sample)"
    )
    args = parser.parse_args()
    planted = build(args.out)
    totals = planted["totals"]
    print(
        f"wrote {totals['records']} records ({totals['documents']} documents, "
        f"{totals['text_bytes'] / 1e6:.2f} MB of text: en {totals['text_chars']['en']:,} chars, "
        f"zh {totals['text_chars']['zh']:,} chars) to {args.out}"
    )


if __name__ == "__main__":
    main()
