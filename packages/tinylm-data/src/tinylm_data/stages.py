"""The stages of a build, in the order documents go through them.

Everything that lists stages (the funnel in stats.json, the plots, the command-line summary,
the per-stage timings) is derived from `STAGES`, so a new stage is declared here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    READ = "read"
    CLEAN = "clean"
    FILTER = "filter"
    TOKENIZE = "tokenize"
    HASH = "hash"  # exact-dedup keys and MinHash signatures
    KEPT = "kept"  # extra steps on the kept documents (per-token columns such as a label mask)
    EXACT_DEDUP = "exact_dedup"
    NEAR_DEDUP = "near_dedup"
    QUALITY = "quality"  # model-based scores and their threshold rules
    MIXTURE = "mixture"
    SPLIT = "split"  # hold out the validation documents
    PACK = "pack"


@dataclass(frozen=True, slots=True)
class StageInfo:
    stage: Stage
    description: str
    # Where the documents it removes are counted in the accounting
    # (in = kept + filtered + duplicates + rejected); None: the stage removes nothing.
    removed_as: str | None = None
    after: str = ""  # funnel label: what is left after the stage
    column: str = ""  # command-line summary column for what it removes


STAGES: tuple[StageInfo, ...] = (
    StageInfo(Stage.READ, "read and parse input files", "rejected", "readable", "rejected"),
    StageInfo(Stage.CLEAN, "apply the cleaning rules"),
    StageInfo(Stage.FILTER, "drop documents the filters refuse", "filtered", "after filters", "filtered"),
    StageInfo(Stage.TOKENIZE, "tokenize, EOS appended"),
    StageInfo(Stage.HASH, "dedup keys and MinHash signatures"),
    StageInfo(Stage.KEPT, "extra steps on kept documents"),
    StageInfo(Stage.EXACT_DEDUP, "remove exact duplicates", "duplicates", "after exact dedup", "exact dup"),
    StageInfo(Stage.NEAR_DEDUP, "remove near duplicates", "duplicates", "after near dedup", "near dup"),
    StageInfo(Stage.QUALITY, "score and apply quality rules", "filtered", "after quality", "quality"),
    StageInfo(Stage.MIXTURE, "mixture sampling", "filtered", "kept", "sampled out"),
    StageInfo(Stage.SPLIT, "hold out the validation split"),
    StageInfo(Stage.PACK, "pack into blocks and write shards"),
)  # fmt: skip
"""Every stage in pipeline order."""

STAGE_INFO: dict[Stage, StageInfo] = {info.stage: info for info in STAGES}
REMOVING_STAGES: tuple[Stage, ...] = tuple(i.stage for i in STAGES if i.removed_as is not None)
"""The stages that remove documents: the steps of the funnel."""
STAGE_ONE: tuple[Stage, ...] = tuple(
    i.stage for i in STAGES[: list(Stage).index(Stage.EXACT_DEDUP)]
)
"""The per-file stages, run by the engine's workers; the rest are the assembly's."""
