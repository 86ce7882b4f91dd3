"""The embedded sample: its files parse in their real formats, and what planted.json says was
planted is what the files hold. The files are read here with json, gzip and pyarrow directly,
never with the pipeline, so a reader bug cannot hide a sample bug (or the other way round)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tinylm_data.sample import planted, sample_config, sample_dir

REPO_ROOT = Path(__file__).resolve().parents[3]
GENERATOR = REPO_ROOT / "tools" / "make_sample.py"
HAND_WRITTEN = {"__init__.py", "sample.yaml", "README.md", "planted.json"}
CJK = re.compile(r"[\u4e00-\u9fff]")
DOLMA_FIELDS = ["id", "text", "source", "added", "created", "metadata"]
BAIKE_FIELDS = ["qid", "category", "title", "desc", "answer"]
ZHIHU_COLUMNS = ["INSTRUCTION", "RESPONSE", "SOURCE", "METADATA"]
MISSING = object()


@dataclass(frozen=True)
class Doc:
    file: str
    where: tuple[str, int]  # ("line", 1-based) or ("row", 0-based)
    text: str | None  # None for a bad record
    reason: str | None  # why a record is bad


def _key(file: str, where: tuple[str, int]) -> tuple[str, str, int]:
    return (file, *where)


def _loc_key(loc: dict[str, Any]) -> tuple[str, str, int]:
    kind = "row" if "row" in loc else "line"
    return (loc["file"], kind, loc[kind])


def _json_record(file: str, n: int, raw: bytes, fields: list[str], text_of) -> Doc:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError:
        return Doc(file, ("line", n), None, "malformed_json")
    assert isinstance(record, dict), f"{file}:{n} is not a JSON object"
    text = text_of(record)
    if text is MISSING:
        return Doc(file, ("line", n), None, "missing_text")
    if not isinstance(text, str):
        return Doc(file, ("line", n), None, "non_string_text")
    assert list(record) == fields, f"{file}:{n} has fields {list(record)}"
    return Doc(file, ("line", n), text, None)


def _baike_text(record: dict[str, Any]) -> Any:
    if "answer" not in record:
        return MISSING
    parts = [record.get(k) for k in ("title", "desc", "answer")]
    return "\n".join(parts) if all(isinstance(p, str) for p in parts) else None


def _read(path: Path, file: str) -> list[Doc]:
    if file.endswith(".json.gz"):
        raw = path.read_bytes()
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
        lines = gzip.decompress(raw).split(b"\n")
        assert lines.pop() == b""
        docs = [
            _json_record(file, n, b, DOLMA_FIELDS, lambda r: r.get("text", MISSING))
            for n, b in enumerate(lines, 1)
        ]
        for doc, line in zip(docs, lines, strict=True):
            if doc.text is not None:
                record = json.loads(line)
                assert isinstance(record["metadata"], dict) and re.fullmatch(
                    r"[a-z2-7]{32}", record["id"]
                )
        return docs
    if file.endswith(".json"):
        lines = path.read_bytes().split(b"\n")
        assert lines.pop() == b""
        return [_json_record(file, n, b, BAIKE_FIELDS, _baike_text) for n, b in enumerate(lines, 1)]
    if file.endswith(".parquet"):
        table = pq.read_table(path)
        assert table.schema.names == ZHIHU_COLUMNS
        assert all(t == pa.string() for t in table.schema.types)
        docs = []
        for row, record in enumerate(table.to_pylist()):
            assert isinstance(json.loads(record["METADATA"]), dict)
            assert record["SOURCE"] == "Zhihu"
            q, a = record["INSTRUCTION"], record["RESPONSE"]
            if isinstance(q, str) and isinstance(a, str):
                docs.append(Doc(file, ("row", row), f"{q}\n{a}", None))
            else:
                docs.append(Doc(file, ("row", row), None, "non_string_text"))
        return docs
    assert file.endswith(".txt")
    lines = path.read_bytes().split(b"\n")
    assert lines.pop() == b""
    docs = []
    for n, raw in enumerate(lines, 1):
        try:
            docs.append(Doc(file, ("line", n), raw.decode("utf-8"), None))
        except UnicodeDecodeError:
            docs.append(Doc(file, ("line", n), None, "invalid_utf8"))
    return docs


@cache
def _docs() -> tuple[Doc, ...]:
    root = sample_dir()
    return tuple(doc for file in planted()["files"] for doc in _read(root / file, file))


def _texts() -> list[Doc]:
    return [d for d in _docs() if d.text is not None]


def _locs(section: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {_loc_key(loc) for loc in section}


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


# --- files and formats ---------------------------------------------------------------------


def test_sample_folder_holds_exactly_the_listed_files():
    root = sample_dir()
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert on_disk == set(planted()["files"]) | HAND_WRITTEN


def test_every_file_parses_in_its_format_and_bad_records_are_the_planted_ones():
    info = planted()
    per_file = defaultdict(int)
    for doc in _docs():
        per_file[doc.file] += 1
    assert dict(per_file) == {f: v["records"] for f, v in info["files"].items()}
    bad = {_key(d.file, d.where): d.reason for d in _docs() if d.text is None}
    by_source = info["totals"]["by_source"]
    for source, counts in by_source.items():
        docs = [d for d in _docs() if d.file.startswith(f"{source}/")]
        assert counts["records"] == len(docs)
        assert counts["bad_records"] == sum(d.text is None for d in docs)
    assert bad == {_loc_key(b): b["reason"] for b in info["bad_records"]}
    assert {b["reason"] for b in info["bad_records"]} == {
        "malformed_json",
        "missing_text",
        "non_string_text",
        "invalid_utf8",
    }
    assert {b["file"].split("/")[0] for b in info["bad_records"]} == {
        "dolma",
        "baike_qa",
        "zhihu_kol",
        "clue",
    }


def test_ids_are_unique_within_each_source():
    ids = defaultdict(list)
    root = sample_dir()
    for file in planted()["files"]:
        if file.endswith((".json.gz", ".json")):
            raw = (
                gzip.decompress((root / file).read_bytes())
                if file.endswith(".gz")
                else (root / file).read_bytes()
            )
            for line in raw.splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ids[file.split("/")[0]].append(record.get("id", record.get("qid")))
    for source, values in ids.items():
        assert len(values) == len(set(values)) > 100, source


# --- planted problems ------------------------------------------------------------------------


def test_exact_duplicate_groups_are_the_planted_ones():
    groups = defaultdict(set)
    for doc in _texts():
        if doc.text.strip():
            groups[_normalized(doc.text)].add(_key(doc.file, doc.where))
    found = {frozenset(g) for g in groups.values() if len(g) > 1}
    info = planted()["exact_duplicates"]
    assert found == {frozenset(_locs(g["members"])) for g in info["groups"]}
    assert info["num_groups"] == len(found) >= 20
    assert info["num_redundant"] == sum(len(g) - 1 for g in found)
    kinds = {g["kind"] for g in info["groups"]}
    assert kinds == {"identical", "whitespace", "case_upper", "case_lower"}
    sources = [{m["file"].split("/")[0] for m in g["members"]} for g in info["groups"]]
    assert any(len(s) > 1 for s in sources), "no duplicate across sources"
    files = [{m["file"] for m in g["members"]} for g in info["groups"]]
    assert any(len(f) > 1 and len({x.split("/")[0] for x in f}) == 1 for f in files)


def _shingles(tokens: list[str], n: int = 5) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _jaccard(a: str, b: str, tokenize) -> float:
    sa, sb = _shingles(tokenize(a)), _shingles(tokenize(b))
    return len(sa & sb) / len(sa | sb)


def test_near_duplicates_are_close_but_not_exact():
    import jieba

    jieba.setLogLevel(60)
    tokenizers = {
        "mixed": lambda t: re.findall(r"[0-9a-z]+(?:'[a-z]+)?|[\u4e00-\u9fff]", t.casefold()),
        "words": lambda t: t.casefold().split(),
        "jieba": lambda t: [w for w in jieba.lcut(t.casefold()) if w.strip()],
    }
    by_key = {_key(d.file, d.where): d.text for d in _texts()}
    info = planted()["near_duplicates"]
    assert info["num_clusters"] == len(info["clusters"]) >= 10
    for cluster in info["clusters"]:
        first, *others = [by_key[_loc_key(m)] for m in cluster["members"]]
        for other in others:
            assert _normalized(other) != _normalized(first)
        for measure, recorded in cluster["min_jaccard"].items():
            values = [_jaccard(first, o, tokenizers[measure]) for o in others]
            assert min(values) == pytest.approx(recorded, abs=1e-4)
            assert 0.85 <= recorded < 1.0
    members = [_loc_key(m) for c in info["clusters"] for m in c["members"]]
    exact = [_loc_key(m) for g in planted()["exact_duplicates"]["groups"] for m in g["members"]]
    assert len(set(members)) == len(members) and not set(members) & set(exact)


JUNK_DETECTORS = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+").search,
    "url": re.compile(r"https?://|www\.", re.I).search,
    "ip": re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])").search,
    "phone": re.compile(
        r"(?<!\d)1[3-9]\d{9}(?!\d)|\+1-\d{3}-\d{3}-\d{4}|\(\d{3}\) \d{3}-\d{4}"
    ).search,
    "qq": re.compile(r"qq[^\d\n]{0,4}\d{5,11}", re.I).search,
    "html": re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|&(?:#\d+|[a-zA-Z]+);").search,
    "brackets": re.compile(r"[【】「」『』]").search,
    "punctuation_runs": re.compile(r"([!！?？。.~～])\1{3,}").search,
    "unicode": re.compile(
        r"[\u00a0\u00ad\u200b-\u200f\u2060\ufeff\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
    ).search,
    "whitespace": re.compile(r"[ \t\u3000]{2,}|\r|\n{3,}|[ \t\u3000]\n|^\s|\s$").search,
}


def test_junk_is_where_planted_json_says():
    import emoji
    import opencc

    t2s = opencc.OpenCC("t2s")
    maybe_emoji = re.compile(r"[\u2190-\u2bff\U0001f000-\U0001faff]")
    detectors = dict(JUNK_DETECTORS)
    detectors["emoji"] = lambda t: maybe_emoji.search(t) and emoji.emoji_count(t) > 0
    detectors["traditional"] = lambda t: t2s.convert(t) != t
    info = planted()["junk"]
    assert set(info["documents"]) == set(detectors)
    docs = [d for d in _texts() if d.text.strip()]
    for kind, found in detectors.items():
        where = {_key(d.file, d.where) for d in docs if found(d.text)}
        assert where == _locs(info["documents"][kind]), kind
        assert info["counts"][kind] == len(where) >= 10, kind
    assert len(info["junk_only"]) >= 3


def _words(text: str) -> int:
    return len(re.sub(r"\s", "", text)) if CJK.search(text) else len(text.split())


def test_short_and_empty_documents_are_the_planted_ones():
    info = planted()
    empty = {_key(d.file, d.where) for d in _texts() if not d.text.strip()}
    short = {_key(d.file, d.where) for d in _texts() if d.text.strip() and _words(d.text) < 10}
    assert empty == _locs(info["empty"]["documents"]) and len(empty) >= 3
    assert short == _locs(info["short"]["documents"]) and len(short) >= 20
    # Everything else clears the word minimums by a wide margin, so the filter stage only
    # removes what was planted (and the junk-only documents, once cleaned).
    for source, counts in info["totals"]["by_source"].items():
        assert counts["empty"] == sum(k[0].startswith(f"{source}/") for k in empty)
        assert counts["short"] == sum(k[0].startswith(f"{source}/") for k in short)
    planted_apart = empty | short | _locs(info["junk"]["junk_only"])
    rest = [d.text for d in _texts() if _key(d.file, d.where) not in planted_apart]
    assert min(_words(t) for t in rest) >= 30


# --- size and shape -----------------------------------------------------------------------------


def test_size_language_balance_and_long_tail():
    texts = [d.text for d in _texts()]
    zh_bytes = sum(len(t.encode()) for t in texts if CJK.search(t))
    en_bytes = sum(len(t.encode()) for t in texts if not CJK.search(t))
    assert 3000 <= len(texts) <= 6000
    assert 1.5e6 <= zh_bytes + en_bytes <= 3.0e6
    assert 0.4 <= zh_bytes / (zh_bytes + en_bytes) <= 0.6
    totals = planted()["totals"]
    assert totals["documents"] == len(texts)
    assert totals["text_bytes"] == zh_bytes + en_bytes
    on_disk = sum(p.stat().st_size for p in sample_dir().rglob("*") if p.is_file())
    assert on_disk < 1.5e6
    # A long tail: some documents several thousand tokens long, most of them short.
    long_en = [t for t in texts if not CJK.search(t) and len(t.split()) > 2000]
    long_zh = [t for t in texts if CJK.search(t) and len(t) > 4000]
    assert len(long_en) >= 10 and len(long_zh) >= 8
    lengths = sorted(len(t) for t in texts)
    assert lengths[len(lengths) // 2] < 600


def test_sample_yaml_is_a_build_config_for_every_source():
    from tinylm_data.config import load_config_file, parse_config

    config = parse_config(load_config_file(sample_config()), origin="sample.yaml")
    assert (config.name, config.tokenizer, config.block_size, config.pack_mode) == (
        "sample",
        "builtin:sample",
        1024,
        "concat",
    )
    assert [s.kind for s in config.sources] == ["dolma", "baike_qa", "zhihu_kol", "clue"]
    assert config.dedup.exact and config.dedup.near.enabled
    listed = set(planted()["files"])
    matched = set()
    for source in config.sources:
        assert source.weight > 0 and source.clean
        for pattern in source.paths:
            hits = {p.relative_to(sample_dir()).as_posix() for p in sample_dir().glob(pattern)}
            assert hits, pattern
            matched |= hits
    assert matched == listed
    raw = yaml.safe_load(sample_config().read_text(encoding="utf-8"))
    assert all(not Path(p).is_absolute() for s in raw["sources"] for p in s["paths"])


# --- reproducibility ------------------------------------------------------------------------


@pytest.mark.slow
def test_generator_recreates_the_shipped_sample_byte_for_byte(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_sample", GENERATOR)
    assert spec is not None and spec.loader is not None, f"generator missing: {GENERATOR}"
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_sample", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.build(tmp_path)
    made = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert made == set(planted()["files"]) | {"planted.json"}
    for name in sorted(made):
        assert (tmp_path / name).read_bytes() == (sample_dir() / name).read_bytes(), name


# --- against the real cleaning rules and filters -------------------------------------------


@pytest.mark.slow
def test_cleaning_and_filters_remove_what_was_planted_and_nothing_else():
    """Cleaned with the sample.yaml rules and filtered with the default FilterConfig, the
    sample loses exactly its short, empty and junk-only documents, keeps no junk, and its
    exact and near duplicates stay duplicates under the pipeline's own keys and words."""
    from tinylm_data.clean import Cleaner
    from tinylm_data.config import load_config_file, parse_config
    from tinylm_data.filters import apply_filters, detect_language
    from tinylm_data.textnorm import dedup_key, words

    config = parse_config(load_config_file(sample_config()))
    sources = {s.kind: s for s in config.sources}
    filters = config.filters
    info = planted()
    cleaned: dict[tuple[str, str, int], tuple[str, str]] = {}
    dropped = set()
    for doc in _texts():
        source = sources[doc.file.split("/")[0]]
        text, _ = Cleaner(source.clean)(doc.text)
        language = detect_language(text) if source.language == "auto" else source.language
        key = _key(doc.file, doc.where)
        if apply_filters(text, language, filters) is not None:
            dropped.add(key)
            continue
        cleaned[key] = (text, language)
        assert not [k for k, found in JUNK_DETECTORS.items() if found(text)], (key, text[:200])
    expected = _locs(info["short"]["documents"] + info["empty"]["documents"])
    assert dropped == expected | _locs(info["junk"]["junk_only"])

    groups = defaultdict(set)
    for key, (text, _) in cleaned.items():
        groups[dedup_key(text)].add(key)
    found = {frozenset(g) for g in groups.values() if len(g) > 1}
    assert found == {frozenset(_locs(g["members"])) for g in info["exact_duplicates"]["groups"]}

    redundant = sum(len(g) - 1 for g in found) + info["near_duplicates"]["num_redundant"]
    assert len(cleaned) - redundant == info["totals"]["documents_left"]["count"]
    for cluster in info["near_duplicates"]["clusters"]:
        (first, language), *others = [cleaned[_loc_key(m)] for m in cluster["members"]]
        for text, _ in others:
            assert _jaccard(first, text, partial(words, language=language)) >= 0.85
