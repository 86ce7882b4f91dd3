"""CMMLU, in the format of its paper: "题目：" before each question, the cue "答案是：" and the bare
answer token "A"; the header names the subject in Chinese. The release keeps {dev,test}/<subject>.csv
with a header.
"""

from tinylm_eval.data import CsvLayout
from tinylm_eval.download import Release
from tinylm_eval.prompts import PromptFormat
from tinylm_eval.subjects import CATEGORIES, ZH_NAMES
from tinylm_eval.tasks.multiple_choice import MultipleChoiceTask

TASK = MultipleChoiceTask(
    name="cmmlu",
    # 2: the header names the subject in Chinese; China-specific subjects as haonan-li/CMMLU lists them
    version=2,
    title="CMMLU",
    layout=CsvLayout(
        benchmark="CMMLU",
        file_name="{subject}.csv",
        splits=("dev", "test"),
        header=True,
    ),
    prompt_format=PromptFormat(
        name="cmmlu",
        header="以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
        question_prefix="题目：",
        cue="答案是：",
        answer_separator="",
        subject_names=ZH_NAMES["cmmlu"],
    ),
    categories=CATEGORIES["cmmlu"],
    release=Release(hub_repo="haonan-li/cmmlu", file="cmmlu_v1_0_1.zip"),
    split="test",
)
