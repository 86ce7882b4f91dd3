"""The `--out` and `--work-dir` options of the commands that write a versioned output
(`build`, `sft build`, `pref build`, `rag index`; see `publish`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OutRoot = Annotated[
    str,
    typer.Option(
        help="Output root: writes OUT/<name>/<version>/; a directory or an fsspec URL "
        "(s3://, gs://, hdfs://, abfs://)."
    ),
]
WorkDir = Annotated[
    Path | None,
    typer.Option(
        help="With a URL --out: the local root the build works and resumes in before it "
        "publishes (default: ~/.cache/tinylm-data/work)."
    ),
]
