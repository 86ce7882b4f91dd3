"""The version id's code part covers the modules on the data path, not comments or the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import tinylm_data
from tinylm_data.fingerprint import code_fingerprint

PACKAGE = Path(tinylm_data.__file__).resolve().parent


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tinylm_data"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_comment_and_cli_changes_keep_the_code_version(tmp_path):
    copy = _copy(tmp_path)
    before = code_fingerprint(copy)
    assert before == code_fingerprint(PACKAGE) and before.startswith(tinylm_data.__version__ + "+")
    _edit(copy / "cli.py", "\napp = typer.Typer(", "\n# a new comment\napp = typer.Typer(")
    _edit(copy / "pack.py", "\nPACK_MODES =", "\n# why: a comment on the data path\nPACK_MODES =")
    assert code_fingerprint(copy) == before
    _edit(copy / "cli.py", 'SAMPLE = "sample"', 'SAMPLE = "sample"\nOTHER = 1')
    assert code_fingerprint(copy) == before, "the CLI never changes what a build writes"


def test_a_code_change_on_the_data_path_changes_the_code_version(tmp_path):
    copy = _copy(tmp_path)
    before = code_fingerprint(copy)
    _edit(copy / "pack.py", 'PACK_MODES = ("concat", "bestfit")', 'PACK_MODES = ("bestfit",)')
    changed = code_fingerprint(copy)
    assert changed != before
    (copy / "new_step.py").write_text("X = 1\n", encoding="utf-8")
    assert code_fingerprint(copy) != changed, "a new module is on the data path by default"


def test_cached_syntax_digests_give_the_cold_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_CACHE", str(tmp_path / "cache"))
    cold = code_fingerprint(PACKAGE)
    cache = tmp_path / "cache" / "code-syntax.json"
    assert cache.is_file()
    assert code_fingerprint(PACKAGE) == cold, "a warm cache changes nothing"
    copy = _copy(tmp_path)
    _edit(copy / "pack.py", 'PACK_MODES = ("concat", "bestfit")', 'PACK_MODES = ("bestfit",)')
    assert code_fingerprint(copy) != cold, "an edited module is parsed again, not looked up"
    cache.write_text("{not json")
    assert code_fingerprint(PACKAGE) == cold, "a damaged cache is only a slower start"
