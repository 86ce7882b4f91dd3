"""The text a tokenizer is trained on: every source of a config, read and cleaned, in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .config import BuildConfig
from .document import Rejection


def cleaned_texts(config: BuildConfig, base: Path) -> Iterator[str]:
    from .clean import Cleaner, default_rules
    from .readers import expand_paths, read_documents

    for source in config.sources:
        cleaner = Cleaner(
            source.clean if source.clean is not None else default_rules(source.language)
        )
        for path in expand_paths(source.paths, base):
            for item in read_documents(
                source.kind,
                path,
                source=source.name,
                text_field=source.text_field,
                id_field=source.id_field,
            ):
                if isinstance(item, Rejection):
                    continue
                text, _ = cleaner(item.text)
                if text:
                    yield text
