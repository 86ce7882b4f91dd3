"""MMLU (Hendrycks et al.), in the format of its paper and of Baichuan's MMLU script.

The cue is "Answer:" and the exemplar answers read "Answer: A", so the letter that follows the cue is
the token " A" (space-prefixed). The release keeps data/{dev,val,test}/<subject>_<split>.csv without a
header.
"""

from tinylm_eval.data import CsvLayout
from tinylm_eval.download import Release
from tinylm_eval.prompts import PromptFormat
from tinylm_eval.subjects import CATEGORIES
from tinylm_eval.tasks.multiple_choice import MultipleChoiceTask

TASK = MultipleChoiceTask(
    name="mmlu",
    # 2: categories as hendrycks/test released them (health subjects are "other")
    version=2,
    title="MMLU",
    layout=CsvLayout(
        benchmark="MMLU",
        file_name="{subject}_{split}.csv",
        splits=("dev", "val", "test"),
        header=False,
        subdir="data",
    ),
    prompt_format=PromptFormat(
        name="mmlu",
        header="The following are multiple choice questions (with answers) about {subject}.\n\n",
        question_prefix="",
        cue="Answer:",
        answer_separator=" ",
    ),
    categories=CATEGORIES["mmlu"],
    release=Release(url="https://people.eecs.berkeley.edu/~hendrycks/data.tar"),
    split="test",
)
