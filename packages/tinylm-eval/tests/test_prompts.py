from tinylm_eval.data import Question
from tinylm_eval.prompts import build_prompt, choose_shots
from tinylm_eval.tasks import get_task


def q(i, answer="B", subject="high_school_geography"):
    return Question(subject, i, f"question {i}?", ("w", "x", "y", "z"), answer, str(i))


def chars(text):
    return len(text)


def test_mmlu_format_snapshot():
    built = build_prompt(get_task("mmlu").prompt_format, q(9), [q(0, "A")], chars, 10_000)
    assert built.text == (
        "The following are multiple choice questions (with answers) about high school geography.\n\n"
        "question 0?\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\n"
        "question 9?\nA. w\nB. x\nC. y\nD. z\nAnswer:"
    )
    assert built.shots_used == 1


def test_ceval_format_snapshot():
    built = build_prompt(get_task("ceval").prompt_format, q(9), [q(0, "C")], chars, 10_000)
    assert built.text == (
        "以下是中国关于高中地理考试的单项选择题，请选出其中的正确答案。\n\n"
        "question 0?\nA. w\nB. x\nC. y\nD. z\n答案：C\n\n"
        "question 9?\nA. w\nB. x\nC. y\nD. z\n答案："
    )


def test_cmmlu_format_snapshot():
    built = build_prompt(get_task("cmmlu").prompt_format, q(9), [q(0, "D")], chars, 10_000)
    assert built.text == (
        "以下是关于高中地理的单项选择题，请直接给出正确答案的选项。\n\n"
        "题目：question 0?\nA. w\nB. x\nC. y\nD. z\n答案是：D\n\n"
        "题目：question 9?\nA. w\nB. x\nC. y\nD. z\n答案是："
    )


def test_shots_are_dropped_from_the_end_until_the_prompt_fits():
    shots = [q(i) for i in range(5)]
    full = build_prompt(get_task("mmlu").prompt_format, q(9), shots, chars, 10_000)
    limit = len(build_prompt(get_task("mmlu").prompt_format, q(9), shots[:2], chars, 10_000).text)
    built = build_prompt(get_task("mmlu").prompt_format, q(9), shots, chars, limit)
    assert full.shots_used == 5 and built.shots_used == 2 and not built.truncated
    assert "question 1?" in built.text and "question 2?" not in built.text
    tiny = build_prompt(get_task("mmlu").prompt_format, q(9), shots, chars, 5)
    assert tiny.shots_used == 0 and tiny.truncated


def test_shots_are_the_first_k_or_seeded_and_reproducible():
    dev = [q(i) for i in range(5)]
    assert choose_shots(dev, 3, None) == dev[:3]
    assert choose_shots(dev, 3, 7) == choose_shots(dev, 3, 7)
    assert choose_shots(dev, 9, None) == dev


def test_headers_name_the_subject_as_each_release_does():
    assert get_task("ceval").prompt_format.subject_title("computer_network") == "计算机网络"
    assert get_task("cmmlu").prompt_format.subject_title("chinese_food_culture") == "中国饮食文化"
    assert get_task("mmlu").prompt_format.subject_title("computer_network") == "computer network"
    assert get_task("ceval").prompt_format.subject_title("made_up_subject") == "made up subject"
