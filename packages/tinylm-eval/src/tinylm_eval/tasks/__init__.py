"""Evaluation tasks, each registered under its name with its own version.

A new benchmark is one module here defining its `TASK`, plus its line in the registration below
(the order is the order `tinylm-eval all` runs and reports them).
"""

from tinylm_eval.tasks import ceval, cmmlu, mmlu, perplexity
from tinylm_eval.tasks.multiple_choice import ChoiceConfig, MultipleChoiceTask
from tinylm_eval.tasks.perplexity import PerplexityConfig, PerplexityTask
from tinylm_eval.tasks.registry import TASKS, UnknownTaskError, get_task, register

for _task in (mmlu.TASK, ceval.TASK, cmmlu.TASK, perplexity.TASK):
    register(_task)

__all__ = [
    "TASKS",
    "ChoiceConfig",
    "MultipleChoiceTask",
    "PerplexityConfig",
    "PerplexityTask",
    "UnknownTaskError",
    "get_task",
    "multiple_choice_tasks",
    "register",
]


def multiple_choice_tasks() -> dict[str, MultipleChoiceTask]:
    """The registered multiple-choice benchmarks, in registration order."""
    return {n: t for n, t in TASKS.items() if isinstance(t, MultipleChoiceTask)}
