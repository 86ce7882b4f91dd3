"""Accuracy per subject and category, micro/macro averages, and the JSON / Markdown / PNG reports."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from tinylm_eval.subjects import categories_of

logger = logging.getLogger(__name__)

RANDOM_BASELINE = 0.25


def aggregate(
    benchmark: str, categories: Mapping[str, tuple[str, ...]], records: list[dict]
) -> dict:
    """Records carry subject, prediction and answer. A category's score is the mean accuracy of its
    subjects (a CMMLU China-specific subject counts in both of its categories); micro and macro
    averages are over all questions and all subjects."""
    per_subject: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        counts = per_subject[record["subject"]]
        counts[0] += record["prediction"] == record["answer"]
        counts[1] += 1
    subjects = {
        s: {"correct": c, "total": t, "accuracy": c / t}
        for s, (c, t) in sorted(per_subject.items())
    }
    by_category: dict[str, list[float]] = defaultdict(list)
    for subject, entry in subjects.items():
        entry["categories"] = list(categories_of(categories, subject, benchmark))
        for category in entry["categories"]:
            by_category[category].append(entry["accuracy"])
    correct = sum(e["correct"] for e in subjects.values())
    total = sum(e["total"] for e in subjects.values())
    return {
        "subjects": subjects,
        "categories": {
            c: {"accuracy": sum(a) / len(a), "subjects": len(a)}
            for c, a in sorted(by_category.items())
        },
        "micro_accuracy": correct / total if total else 0.0,
        "macro_accuracy": sum(e["accuracy"] for e in subjects.values()) / len(subjects)
        if subjects
        else 0.0,
        "questions": total,
        "random_baseline": RANDOM_BASELINE,
    }


def markdown_table(report: dict) -> str:
    scores = report["scores"]
    lines = [
        f"# {report['benchmark']} — {report['model']['model']}",
        "",
        f"format `{report['prompt_format']}`, {report['shots']} shots, split `{report['split']}`",
        "",
        "| category | accuracy | subjects |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {c} | {v['accuracy']:.2%} | {v['subjects']} |" for c, v in scores["categories"].items()
    ]
    lines += [
        f"| **micro average** | {scores['micro_accuracy']:.2%} | {scores['questions']} questions |",
        f"| **macro average** | {scores['macro_accuracy']:.2%} | {len(scores['subjects'])} |",
        f"| random baseline | {scores['random_baseline']:.2%} | |",
        "",
        "| subject | categories | correct / total | accuracy |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {s} | {', '.join(v['categories'])} | {v['correct']} / {v['total']} | {v['accuracy']:.2%} |"
        for s, v in scores["subjects"].items()
    ]
    return "\n".join(lines) + "\n"


def plot_categories(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = report["scores"]["categories"]
    fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(categories)), 3.5))
    ax.bar(list(categories), [v["accuracy"] for v in categories.values()], color="tab:blue")
    ax.axhline(RANDOM_BASELINE, color="grey", linestyle="--", label="random 25%")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{report['benchmark']} by category")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_reports(report: dict, records: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / "results.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    if "scores" in report:
        (out / "results.md").write_text(markdown_table(report), encoding="utf-8")
        plot_categories(report, out / "categories.png")


def ceval_submission(records: list[dict]) -> dict[str, dict[str, str]]:
    """The official C-Eval test submission: {subject: {question id: letter}}."""
    submission: dict[str, dict[str, str]] = defaultdict(dict)
    for record in records:
        submission[record["subject"]][str(record["id"])] = record["prediction"]
    return dict(submission)
