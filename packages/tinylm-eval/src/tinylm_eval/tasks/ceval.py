"""C-Eval, in the format of its paper and of Baichuan's C-Eval script.

The header names the subject in Chinese ("以下是中国关于高中地理考试的单项选择题…"), the cue ends with a
full-width colon and the answer is the bare token "A". The release keeps {dev,val,test}/
<subject>_<split>.csv with a header; its test split has no public answers (a submission is written).
"""

from tinylm_eval.data import CsvLayout
from tinylm_eval.download import Release
from tinylm_eval.prompts import PromptFormat
from tinylm_eval.subjects import CATEGORIES, ZH_NAMES
from tinylm_eval.tasks.multiple_choice import MultipleChoiceTask

TASK = MultipleChoiceTask(
    name="ceval",
    # 2: the header names the subject in Chinese; categories as the release's subject_mapping.json
    version=2,
    title="C-Eval",
    layout=CsvLayout(
        benchmark="C-Eval",
        file_name="{subject}_{split}.csv",
        splits=("dev", "val", "test"),
        header=True,
        unanswered_splits=("test",),
    ),
    prompt_format=PromptFormat(
        name="ceval",
        header="以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n",
        question_prefix="",
        cue="答案：",
        answer_separator="",
        subject_names=ZH_NAMES["ceval"],
    ),
    categories=CATEGORIES["ceval"],
    release=Release(hub_repo="ceval/ceval-exam", file="ceval-exam.zip", first_split="val"),
    split="val",
)
