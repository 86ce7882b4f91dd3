"""stats.json: per-source accounting, the funnel and timings, derived from the declared stages."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .assembly import AssemblyResult
from .config import BuildConfig
from .stage_one import Task
from .stages import REMOVING_STAGES, STAGE_INFO, STAGES, Stage

ACCOUNTING = ("in", "kept", "filtered", "duplicates", "rejected")


def build_stats(
    config: BuildConfig,
    tasks: list[Task],
    summaries: list[dict],
    assembled: AssemblyResult,
    *,
    scoring_seconds: float = 0.0,
) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    seconds: Counter = Counter(assembled.seconds)
    seconds[Stage.QUALITY] += scoring_seconds
    for source in config.sources:
        mine = [s for t, s in zip(tasks, summaries, strict=True) if t.source == source.name]
        removed: dict[str, Counter] = {stage: Counter() for stage in REMOVING_STAGES}
        changes: Counter = Counter()
        repairs: Counter = Counter()
        for summary in mine:
            repairs.update(summary.get("read_repairs", {}))
            for stage, reasons in summary["rejected"].items():
                removed[stage].update(reasons)
            changes.update(summary["changes"])
            seconds.update(summary["seconds"])
        for stage, reasons in assembled.removed[source.name].items():
            removed[stage].update(reasons)
        n_in = sum(s["in"] for s in mine)
        counts = assembled.per_source[source.name]
        held = counts["validation_documents"]
        accounting = dict.fromkeys(ACCOUNTING, 0) | {"in": n_in, "kept": counts["kept"]}
        funnel = {"in": n_in}
        left = n_in
        for stage in REMOVING_STAGES:
            n = sum(removed[stage].values())
            accounting[STAGE_INFO[stage].removed_as] += n
            left -= n
            funnel[stage] = left
        if left != counts["kept"]:
            raise RuntimeError(
                f"document accounting does not close for source {source.name}: {accounting}"
            )
        sources[source.name] = {
            "files": sum(1 for t in tasks if t.source == source.name and t.first_of_file),
            "bytes": sum(s["bytes"] for s in mine),
            "chars_in": sum(s["chars_in"] for s in mine),
            "accounting": accounting,
            "funnel": funnel,
            "removed": {stage: dict(sorted(c.items())) for stage, c in removed.items()},
            "read_rejected": dict(sorted(removed[Stage.READ].items())),
            "filtered": dict(sorted(removed[Stage.FILTER].items())),
            "clean_changes": dict(sorted(changes.items())),
            "read_repairs": dict(sorted(repairs.items())),
            "exact_duplicates": sum(removed[Stage.EXACT_DEDUP].values()),
            "near_duplicates": sum(removed[Stage.NEAR_DEDUP].values()),
            "sampled_out": sum(removed[Stage.MIXTURE].values()),
            "quality_removed": dict(sorted(removed[Stage.QUALITY].items())),
            "weight": source.weight,
            "tokens_kept": counts["tokens_kept"],
            "tokens_packed": counts["tokens_packed"],
            "documents_packed": counts["copies_packed"],
            # copies packed beyond the first of each training document (weights above 1)
            "upsampled": counts["copies_packed"] - (counts["kept"] - held),
            "validation": {"documents": held, "tokens": counts["validation_tokens"]},
        }
    totals: Counter = Counter()
    for s in sources.values():
        totals.update(s["accounting"])
    return {
        "sources": sources,
        **({"quality": assembled.quality} if assembled.quality is not None else {}),
        "total": {k: totals[k] for k in ACCOUNTING},
        "packing": assembled.pack_stats,
        "validation": {
            "share": config.validation_share,
            "documents": assembled.validation_pack_stats["documents"],
            "blocks": assembled.validation_pack_stats["blocks"],
            "tokens": assembled.validation_pack_stats["real"],
        },
        # Seconds per stage, summed over workers (so stage 1 can exceed the wall time); the
        # only part of stats.json that differs between two runs of one build.
        "seconds": {i.stage.value: round(float(seconds[i.stage]), 3) for i in STAGES},
    }
