from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinylm_data.document import Document, Rejection
from tinylm_data.readers import READERS, ReadCounts, expand_paths, read_documents


def _read(kind, path, **kw):
    items = list(read_documents(kind, path, source="s", display_path=path.name, **kw))
    docs = [i for i in items if isinstance(i, Document)]
    rejects = [(r.reason, r.line) for r in items if isinstance(r, Rejection)]
    return docs, rejects


def _jsonl(path: Path, lines: list, gz: bool = False) -> Path:
    data = "".join(
        (ln if isinstance(ln, str) else json.dumps(ln, ensure_ascii=False)) + "\n" for ln in lines
    )
    if gz:
        with gzip.GzipFile(path, "wb", mtime=0) as handle:
            handle.write(data.encode())
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_dolma_fields_ids_and_metadata(tmp_path):
    path = _jsonl(
        tmp_path / "d.json.gz",
        [
            {
                "id": "a1",
                "text": "hello world",
                "source": "cc",
                "added": "2024",
                "created": "2019",
                "metadata": {},
            },
            {"text": "no id here"},
        ],
        gz=True,
    )
    docs, rejects = _read("dolma", path)
    assert rejects == []
    assert docs[0].id == "s/a1" and docs[0].meta["source"] == "cc" and docs[0].meta["line"] == 1
    assert docs[1].id.startswith("s/d.json.gz:2:"), "content hash plus location when there is no id"
    again, _ = _read("dolma", path)
    assert [d.id for d in again] == [d.id for d in docs], "ids are stable across runs"


def test_every_bad_json_line_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"id": 1, "text": "fine"}).encode(),
        b"{broken",
        json.dumps({"id": 2}).encode(),
        json.dumps({"id": 3, "text": 42}).encode(),
        json.dumps({"id": 4, "text": "   "}).encode(),
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        b"",
        json.dumps({"id": 5, "text": "also fine"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    docs, rejects = _read("dolma", path)
    assert [d.text for d in docs] == ["fine", "also fine"]
    assert rejects == [
        ("malformed_json", 2),
        ("missing_text", 3),
        ("non_string_text", 4),
        ("empty_text", 5),
        ("invalid_utf8", 6),
        ("malformed_json", 7),
    ]


def test_truncated_gzip_keeps_what_came_before(tmp_path):
    full = _jsonl(
        tmp_path / "f.jsonl.gz",
        [{"text": f"document number {i} " * 20} for i in range(200)],
        gz=True,
    )
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    docs, rejects = _read("jsonl", cut)
    assert 0 < len(docs) < 200
    assert rejects == [("truncated_gzip", len(docs) + 1)]


def test_unreadable_and_missing_files(tmp_path):
    path = _jsonl(tmp_path / "locked.jsonl", [{"text": "x"}])
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):  # root ignores permissions
            pytest.skip("running as a user who can read any file")
        assert _read("jsonl", path)[1] == [("unreadable_file", None)]
    finally:
        os.chmod(path, 0o644)
    assert _read("jsonl", tmp_path / "gone.jsonl")[1] == [("unreadable_file", None)]


def test_over_long_lines_are_skipped_and_a_50mb_document_reads(tmp_path):
    big = "字" * (50 << 20 // 3)
    path = _jsonl(tmp_path / "big.jsonl", [{"text": "x" * 5000}, {"text": "short"}, {"text": big}])
    docs, rejects = _read("jsonl", path, max_line_bytes=4096)
    assert [d.text for d in docs] == ["short"] and rejects == [
        ("line_too_long", 1),
        ("line_too_long", 3),
    ]
    docs, rejects = _read("jsonl", path)
    assert len(docs) == 3 and len(docs[2].text) == len(big) and rejects == []


def test_baike_qa_joins_title_desc_answer(tmp_path):
    path = _jsonl(
        tmp_path / "b.json",
        [
            {"qid": "q1", "category": "生活", "title": "标题", "desc": "", "answer": "回答"},
            {"qid": "q2", "title": "只有标题"},
            {"qid": "q3", "title": "t", "answer": ["not", "text"]},
        ],
    )
    docs, rejects = _read("baike_qa", path)
    assert (
        docs[0].text == "标题\n回答" and docs[0].id == "s/q1" and docs[0].meta["category"] == "生活"
    )
    assert rejects == [("missing_text", 2), ("non_string_text", 3)]


def test_zhihu_kol_parquet_and_json_lines(tmp_path):
    table = pa.table(
        {
            "INSTRUCTION": ["问题", "问"],
            "RESPONSE": ["回答", None],
            "SOURCE": ["zhihu", "zhihu"],
            "METADATA": ["{}", "{}"],
        }
    )
    pq.write_table(table, tmp_path / "z.parquet")
    docs, rejects = _read("zhihu_kol", tmp_path / "z.parquet")
    assert [d.text for d in docs] == ["问题\n回答"] and rejects == [("missing_text", 2)]
    path = _jsonl(tmp_path / "z.jsonl", [{"INSTRUCTION": "a", "RESPONSE": "b"}])
    assert [d.text for d in _read("zhihu_kol", path)[0]] == ["a\nb"]
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 not really")
    assert _read("zhihu_kol", tmp_path / "corrupt.parquet")[1] == [("corrupt_parquet", None)]


def test_clue_one_document_per_line_or_blank_line_separated(tmp_path):
    # One document per line; a stray blank line (under 10% of lines) does not change the layout.
    per_line = tmp_path / "a.txt"
    lines = [f"第{i}篇文章。" for i in range(20)]
    per_line.write_bytes("\n".join(lines[:10] + [""] + lines[10:]).encode() + b"\n\xff\n")
    docs, rejects = _read("clue", per_line)
    assert [d.text for d in docs] == lines
    assert docs[10].meta["line"] == 12 and rejects == [("invalid_utf8", 22)]
    paragraphs = tmp_path / "b.txt"
    paragraphs.write_text(
        "标题一\n正文一。\n\n标题二\n正文二。\n第二段。\n\n标题三\n正文三。\n", encoding="utf-8"
    )
    docs, _ = _read("clue", paragraphs)
    assert [d.text for d in docs] == [
        "标题一\n正文一。",
        "标题二\n正文二。\n第二段。",
        "标题三\n正文三。",
    ]
    assert [d.meta["line"] for d in docs] == [1, 4, 8]
    jl = _jsonl(tmp_path / "c.json", [{"text": "网页文本"}])
    assert [d.text for d in _read("clue", jl)[0]] == ["网页文本"]


def test_generic_readers_use_the_configured_fields(tmp_path):
    path = _jsonl(tmp_path / "g.jsonl", [{"body": "text a", "uid": 7}])
    docs, _ = _read("jsonl", path, text_field="body", id_field="uid")
    assert docs[0].id == "s/7" and docs[0].text == "text a"
    pq.write_table(pa.table({"content": ["p1", "p2"]}), tmp_path / "g.parquet")
    assert [d.text for d in _read("parquet", tmp_path / "g.parquet", text_field="content")[0]] == [
        "p1",
        "p2",
    ]
    assert set(READERS) == {"dolma", "baike_qa", "zhihu_kol", "clue", "jsonl", "parquet", "txt"}


BOM = "\ufeff".encode()


@pytest.mark.parametrize(
    ("kind", "name", "gz"),
    [("dolma", "d.json.gz", True), ("baike_qa", "b.json", False), ("jsonl", "g.jsonl", False)],
)
def test_json_lines_with_a_byte_order_mark_are_kept_and_counted(tmp_path, kind, name, gz):
    record = {"id": "a", "qid": "a", "title": "标题", "answer": "回答", "text": "first"}
    lines = [
        BOM + json.dumps(record, ensure_ascii=False).encode(),  # a file saved on Windows
        json.dumps({**record, "id": "b", "qid": "b", "text": "second"}).encode(),
        BOM + BOM + json.dumps({**record, "id": "c", "qid": "c", "text": "third"}).encode(),
    ]
    data = b"\r\n".join(lines) + b"\r\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    counts = ReadCounts()
    id_field = "id" if kind == "jsonl" else None  # dolma and baike_qa know their id fields
    items = list(read_documents(kind, path, source="s", id_field=id_field, counts=counts))
    assert [type(i).__name__ for i in items] == ["Document"] * 3
    assert [i.id for i in items] == ["s/a", "s/b", "s/c"] and [i.meta["line"] for i in items] == [
        1,
        2,
        3,
    ]
    assert not any("\ufeff" in i.text for i in items)
    assert counts.bom_stripped == 2
    total = ReadCounts(bom_stripped=1)
    total.add(counts)
    assert total.bom_stripped == 3


@pytest.mark.parametrize("kind", ["clue", "txt"])
def test_text_lines_with_a_byte_order_mark_lose_it_and_are_counted(tmp_path, kind):
    per_line = tmp_path / "a.txt"
    per_line.write_bytes(BOM + "第一篇。\n第二篇。\n".encode() + BOM + "第三篇。\n".encode())
    counts = ReadCounts()
    docs, rejects = _read(kind, per_line, counts=counts)
    assert [d.text for d in docs] == ["第一篇。", "第二篇。", "第三篇。"] and rejects == []
    assert counts.bom_stripped == 2
    plain = tmp_path / "plain.txt"
    plain.write_text("第一篇。\n第二篇。\n第三篇。\n", encoding="utf-8")
    assert [d.id for d in docs] == [
        d.id.replace("plain.txt", "a.txt") for d in _read(kind, plain)[0]
    ]
    paragraphs = tmp_path / "b.txt"
    paragraphs.write_bytes(BOM + "标题一\n正文一。\n\n标题二\n正文二。\n".encode())
    counts = ReadCounts()
    docs, _ = _read(kind, paragraphs, counts=counts)
    assert [d.text for d in docs] == ["标题一\n正文一。", "标题二\n正文二。"]
    assert counts.bom_stripped == 1


def test_expand_paths_is_sorted_unique_and_loud_about_no_match(tmp_path):
    for name in ("b.txt", "a.txt", "sub/c.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    found = expand_paths(["*.txt", "a.txt", "**/*.txt"], tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.txt", "b.txt", "sub/c.txt"]
    with pytest.raises(FileNotFoundError, match="nothing.jsonl"):
        expand_paths(["nothing.jsonl"], tmp_path)


@pytest.mark.shared
def test_real_corpora_read_without_rejections(shared_data):
    corpora = shared_data / "corpora"
    dolma = [
        i
        for p in sorted((corpora / "dolma_samples").glob("*.gz"))
        for i in read_documents("dolma", p, source="dolma")
    ]
    rejected = [i.reason for i in dolma if isinstance(i, Rejection)]
    assert (
        len(dolma) > 500 and set(rejected) <= {"empty_text"} and len(rejected) < 0.05 * len(dolma)
    )
    clue = list(
        read_documents(
            "clue", next((corpora / "cluecorpussmall_sample").glob("*.txt")), source="clue"
        )
    )
    assert len(clue) == 2500 and all(isinstance(i, Document) for i in clue)
