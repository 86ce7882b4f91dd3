"""How each source format turns one parsed record into (native id, text, metadata)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MISSING_TEXT = "missing_text"
NON_STRING_TEXT = "non_string_text"
EMPTY_TEXT = "empty_text"


class RecordError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# (record, text_field, id_field) -> (native_id or None, text, meta)
RecordParser = Callable[
    [dict[str, Any], str | None, str | None], tuple[str | None, str, dict[str, Any]]
]


def _text(record: dict[str, Any], field: str) -> str:
    if field not in record or record[field] is None:
        raise RecordError(MISSING_TEXT, f"no {field!r} field")
    value = record[field]
    if not isinstance(value, str):
        raise RecordError(NON_STRING_TEXT, f"{field!r} is {type(value).__name__}, not a string")
    if not value.strip():
        raise RecordError(EMPTY_TEXT, f"{field!r} is empty")
    return value


def _native_id(record: dict[str, Any], field: str | None) -> str | None:
    if field is None or record.get(field) is None:
        return None
    return str(record[field])


def _joined(record: dict[str, Any], fields: tuple[str, ...], required: tuple[str, ...]) -> str:
    """Parts joined by newlines, empty ones skipped; a required part must be a string."""
    parts = []
    for field in fields:
        value = record.get(field)
        if value is None:
            if field in required:
                raise RecordError(MISSING_TEXT, f"no {field!r} field")
            continue
        if not isinstance(value, str):
            raise RecordError(NON_STRING_TEXT, f"{field!r} is {type(value).__name__}, not a string")
        if value.strip():
            parts.append(value)
    if not parts:
        raise RecordError(EMPTY_TEXT, f"{', '.join(fields)} are all empty")
    return "\n".join(parts)


def dolma(record, text_field, id_field):
    meta = {k: record[k] for k in ("source", "added", "created") if record.get(k) is not None}
    return _native_id(record, id_field or "id"), _text(record, text_field or "text"), meta


def baike_qa(record, text_field, id_field):
    text = _joined(record, ("title", "desc", "answer"), required=("title", "answer"))
    meta = {"category": record["category"]} if isinstance(record.get("category"), str) else {}
    return _native_id(record, id_field or "qid"), text, meta


def zhihu_kol(record, text_field, id_field):
    text = _joined(record, ("INSTRUCTION", "RESPONSE"), required=("INSTRUCTION", "RESPONSE"))
    meta = {"zhihu_source": record["SOURCE"]} if isinstance(record.get("SOURCE"), str) else {}
    return _native_id(record, id_field), text, meta


def generic(record, text_field, id_field):
    return _native_id(record, id_field), _text(record, text_field or "text"), {}


RECORD_PARSERS: dict[str, RecordParser] = {
    "dolma": dolma,
    "baike_qa": baike_qa,
    "zhihu_kol": zhihu_kol,
    "jsonl": generic,
    "clue": generic,  # CLUECorpusSmall's JSON-lines form
    "parquet": generic,
}
