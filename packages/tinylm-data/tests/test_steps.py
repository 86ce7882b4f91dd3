"""The step contract: filter rejects carry their detail; per-token columns reach the shards aligned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import load_config_file, parse_config
from tinylm_data.document import Batch, Rejection
from tinylm_data.engines import LocalEngine
from tinylm_data.stages import REMOVING_STAGES, STAGES, Stage
from tinylm_data.steps import Step, stage_one_steps


class TokenPositions(Step):
    """Adds each token's position in its document, and a mask that is 1 on even positions."""

    stage = Stage.KEPT
    token_columns = {"position": "int32", "even": "int8"}

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        for row in batch.rows:
            position = np.arange(len(row.tokens), dtype=np.int32)
            row.token_columns["position"] = position
            row.token_columns["even"] = (position % 2 == 0).astype(np.int8)
        return batch, []


def _build(corpus: Path, out: Path, *, pack_mode: str = "concat", workers: int = 1, steps=()):
    data = load_config_file(corpus) | {"pack_mode": pack_mode}
    return run_build(
        parse_config(data),
        corpus.parent,
        BuildOptions(out_root=out),
        engine=LocalEngine(workers, "batches"),
        extra_steps=steps,
    )


def test_stages_are_declared_once_in_pipeline_order():
    assert [i.stage for i in STAGES] == list(Stage)
    assert REMOVING_STAGES == (
        Stage.READ,
        Stage.FILTER,
        Stage.EXACT_DEDUP,
        Stage.NEAR_DEDUP,
        Stage.QUALITY,
        Stage.MIXTURE,
    )


def test_extra_steps_must_run_on_kept_documents(tiny_corpus):
    class Early(TokenPositions):
        stage = Stage.CLEAN

    config = parse_config(load_config_file(tiny_corpus))
    with pytest.raises(ValueError, match="must have stage kept"):
        stage_one_steps(config, "{}", 0, [Early()])


def test_filter_rejects_carry_their_detail(tiny_corpus, tmp_path):
    result = _build(tiny_corpus, tmp_path)
    rejects = pq.read_table(result.out_dir / "rejects").to_pylist()
    filtered = [r for r in rejects if r["stage"] == "filter"]
    assert len(filtered) == sum(
        sum(s["filtered"].values()) for s in result.stats["sources"].values()
    )
    assert filtered and all(r["detail"] for r in filtered)
    short = [r for r in filtered if r["doc_id"] == "en/short"]
    assert [r["detail"] for r in short] == ["2 words < min_en_words 10"] * 2


def test_too_long_rejects_say_the_length_and_the_limit(tiny_corpus, tmp_path):
    data = load_config_file(tiny_corpus)
    data["filters"] = {"max_chars": 300}
    result = run_build(parse_config(data), tiny_corpus.parent, BuildOptions(out_root=tmp_path))
    rejects = pq.read_table(result.out_dir / "rejects").to_pylist()
    too_long = [r for r in rejects if r["reason"] == "too_long"]
    assert too_long and all(
        r["detail"].endswith(" chars > max_chars 300") and int(r["detail"].split()[0]) > 300
        for r in too_long
    )


@pytest.mark.parametrize(("pack_mode", "workers"), [("concat", 1), ("bestfit", 1), ("concat", 2)])
def test_a_per_token_column_arrives_aligned_in_the_shards(
    tiny_corpus, tmp_path, pack_mode, workers
):
    plain = _build(tiny_corpus, tmp_path / "plain", pack_mode=pack_mode)
    marked = _build(
        tiny_corpus,
        tmp_path / "marked",
        pack_mode=pack_mode,
        workers=workers,
        steps=[TokenPositions()],
    )
    assert marked.manifest["version"] != plain.manifest["version"]
    eos = marked.manifest["tokenizer"]["eos_id"]
    table = pq.read_table(marked.out_dir / "shards")
    assert table.schema.field("position").type.value_type.bit_width == 32
    assert table.schema.field("even").type.value_type.bit_width == 8
    plain_table = pq.read_table(plain.out_dir / "shards")
    assert table.column("input_ids").equals(plain_table.column("input_ids")), "same packing"
    assert "position" not in plain_table.schema.names, "no extra column unless a step adds one"
    continued = ends = 0
    last_position: dict[str, int] = {}  # concat: a document continues where its last piece ended
    for row in table.to_pylist():
        ids, position, even = (np.array(row[k]) for k in ("input_ids", "position", "even"))
        offsets, n = row["doc_offsets"], row["num_tokens"]
        assert not position[n:].any() and not even[n:].any(), "padding is 0"
        assert (even[:n] == (position[:n] % 2 == 0)).all()
        for doc_id, start, end in zip(row["doc_ids"], offsets[:-1], offsets[1:], strict=True):
            piece = position[start:end]
            assert (np.diff(piece) == 1).all(), "positions run on inside a segment"
            if piece[0] != 0:
                continued += 1
                if pack_mode == "concat":
                    assert piece[0] == last_position[doc_id] + 1
            last_position[doc_id] = int(piece[-1])
            ends += int(ids[end - 1] == eos)
    assert continued > 0, "some documents are split across blocks"
    assert ends == sum(s["documents_packed"] for s in marked.stats["sources"].values())
