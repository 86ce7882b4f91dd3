"""The task registry: every built-in task under its name with its own version; clear errors."""

import pytest

from tinylm_eval.tasks import (
    TASKS,
    MultipleChoiceTask,
    UnknownTaskError,
    get_task,
    multiple_choice_tasks,
    register,
)


def test_every_built_in_task_is_registered_with_its_own_version():
    assert list(TASKS) == ["mmlu", "ceval", "cmmlu", "ppl"]
    for name, task in TASKS.items():
        assert task.name == name and isinstance(task.version, int) and task.version >= 1
    assert list(multiple_choice_tasks()) == ["mmlu", "ceval", "cmmlu"]
    assert all(isinstance(t, MultipleChoiceTask) for t in multiple_choice_tasks().values())
    # each benchmark's format is its own and is found by name
    assert {n: t.prompt_format.name for n, t in multiple_choice_tasks().items()} == {
        "mmlu": "mmlu",
        "ceval": "ceval",
        "cmmlu": "cmmlu",
    }


def test_unknown_task_names_the_registered_ones():
    with pytest.raises(UnknownTaskError, match="unknown task 'mmlu-pro'.*ceval, cmmlu, mmlu, ppl"):
        get_task("mmlu-pro")


def test_a_name_is_registered_once_and_needs_a_version():
    with pytest.raises(ValueError, match="registered twice"):
        register(get_task("mmlu"))
    with pytest.raises(ValueError, match="integer version"):
        register(type("Unversioned", (), {"name": "x", "version": "2"})())
    assert "x" not in TASKS
