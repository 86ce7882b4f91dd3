"""The subject → category mappings hold the complete official subject lists and category sizes."""

from collections import Counter

import pytest

from tinylm_eval.data import SAMPLE_DIR
from tinylm_eval.subjects import CATEGORIES, UNCATEGORISED, categories_of
from tinylm_eval.tasks import get_task

# The file names of each official release (MMLU data/test, C-Eval val, CMMLU test), sorted.
SUBJECTS = {
    "mmlu": """
abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology
college_chemistry college_computer_science college_mathematics college_medicine
college_physics computer_security conceptual_physics econometrics electrical_engineering
elementary_mathematics formal_logic global_facts high_school_biology high_school_chemistry
high_school_computer_science high_school_european_history high_school_geography
high_school_government_and_politics high_school_macroeconomics high_school_mathematics
high_school_microeconomics high_school_physics high_school_psychology high_school_statistics
high_school_us_history high_school_world_history human_aging human_sexuality
international_law jurisprudence logical_fallacies machine_learning management marketing
medical_genetics miscellaneous moral_disputes moral_scenarios nutrition philosophy
prehistory professional_accounting professional_law professional_medicine
professional_psychology public_relations security_studies sociology us_foreign_policy
virology world_religions""",
    "ceval": """
accountant advanced_mathematics art_studies basic_medicine business_administration
chinese_language_and_literature civil_servant clinical_medicine college_chemistry
college_economics college_physics college_programming computer_architecture computer_network
discrete_mathematics education_science electrical_engineer
environmental_impact_assessment_engineer fire_engineer high_school_biology
high_school_chemistry high_school_chinese high_school_geography high_school_history
high_school_mathematics high_school_physics high_school_politics
ideological_and_moral_cultivation law legal_professional logic mao_zedong_thought marxism
metrology_engineer middle_school_biology middle_school_chemistry middle_school_geography
middle_school_history middle_school_mathematics middle_school_physics middle_school_politics
modern_chinese_history operating_system physician plant_protection
probability_and_statistics professional_tour_guide sports_science tax_accountant
teacher_qualification urban_and_rural_planner veterinary_medicine""",
    "cmmlu": """
agronomy anatomy ancient_chinese arts astronomy business_ethics chinese_civil_service_exam
chinese_driving_rule chinese_food_culture chinese_foreign_policy chinese_history
chinese_literature chinese_teacher_qualification clinical_knowledge
college_actuarial_science college_education college_engineering_hydrology college_law
college_mathematics college_medical_statistics college_medicine computer_science
computer_security conceptual_physics construction_project_management economics education
electrical_engineering elementary_chinese elementary_commonsense
elementary_information_and_technology elementary_mathematics ethnology food_science genetics
global_facts high_school_biology high_school_chemistry high_school_geography
high_school_mathematics high_school_physics high_school_politics human_sexuality
international_law journalism jurisprudence legal_and_moral_basis logical machine_learning
management marketing marxist_theory modern_chinese nutrition philosophy
professional_accounting professional_law professional_medicine professional_psychology
public_relations security_study sociology sports_science traditional_chinese_medicine
virology world_history world_religions""",
}

# Subjects per category in hendrycks/test categories.py, C-Eval's subject_mapping.json and
# haonan-li/CMMLU src/categories.py (CMMLU's China-specific subjects also count in a main category).
SIZES = {
    "mmlu": {"STEM": 18, "humanities": 13, "social sciences": 12, "other": 14},
    "ceval": {"STEM": 20, "Social Science": 10, "Humanities": 11, "Other": 11},
    "cmmlu": {
        "STEM": 17,
        "Humanities": 13,
        "Social Science": 22,
        "Other": 15,
        "China specific": 15,
    },
}
SPLIT = {"mmlu": "test", "ceval": "val", "cmmlu": "test"}


@pytest.mark.parametrize("benchmark", sorted(SUBJECTS))
def test_every_official_subject_and_no_other_is_mapped(benchmark):
    names = SUBJECTS[benchmark].split()
    assert len(names) == {"mmlu": 57, "ceval": 52, "cmmlu": 67}[benchmark]
    assert sorted(CATEGORIES[benchmark]) == names


@pytest.mark.parametrize("benchmark", sorted(SIZES))
def test_category_sizes_match_the_official_mappings(benchmark):
    sizes = Counter(c for categories in CATEGORIES[benchmark].values() for c in categories)
    assert sizes == SIZES[benchmark]


def test_placements_that_differ_from_a_naive_reading():
    assert categories_of(CATEGORIES["mmlu"], "anatomy") == ("other",)  # a health subject, not STEM
    assert categories_of(CATEGORIES["mmlu"], "virology") == ("other",)
    assert categories_of(CATEGORIES["ceval"], "clinical_medicine") == ("Other",)
    assert categories_of(CATEGORIES["cmmlu"], "chinese_history") == ("Humanities", "China specific")
    assert categories_of(CATEGORIES["cmmlu"], "ancient_chinese") == (
        "Social Science",
        "China specific",
    )
    assert categories_of(CATEGORIES["cmmlu"], "elementary_information_and_technology") == ("Other",)
    assert categories_of(CATEGORIES["cmmlu"], "computer_security") == ("Other",)
    assert categories_of(CATEGORIES["cmmlu"], "made_up") == (UNCATEGORISED,)


@pytest.mark.shared
@pytest.mark.parametrize("benchmark", sorted(SPLIT))
def test_every_subject_of_the_shared_data_has_a_category(shared_data, benchmark):
    found = get_task(benchmark).layout.subjects(shared_data / benchmark, SPLIT[benchmark])
    assert found == SUBJECTS[benchmark].split()
    assert all(UNCATEGORISED not in categories_of(CATEGORIES[benchmark], s) for s in found)


@pytest.mark.parametrize("benchmark", sorted(SIZES))
def test_the_authored_sample_covers_every_category(benchmark):
    for split in ("dev", SPLIT[benchmark], "test"):
        subjects = get_task(benchmark).layout.subjects(SAMPLE_DIR / benchmark, split)
        covered = {c for s in subjects for c in categories_of(CATEGORIES[benchmark], s)}
        assert covered == set(SIZES[benchmark]), split
