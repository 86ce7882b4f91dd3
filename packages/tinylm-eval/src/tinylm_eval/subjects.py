"""Subject → category mappings of MMLU, C-Eval and CMMLU, as their authors released them.

- MMLU (hendrycks/test `categories.py`): each subject has a subcategory, each subcategory one of four
  categories; health subjects (anatomy, college medicine, medical genetics, virology, ...) are "other".
  57 subjects: STEM 18, humanities 13, social sciences 12, other 14.
- C-Eval (`subject_mapping.json` of the C-Eval release): 52 subjects: STEM 20, Social Science 10,
  Humanities 11, Other 11.
- CMMLU (haonan-li/CMMLU `src/categories.py`): 67 subjects in STEM 17, Humanities 13, Social Science 22
  and Other 15; 15 of them are also "China specific", which the CMMLU paper reports as a fifth
  category. A category score is the mean accuracy of its subjects, so a China-specific subject counts
  in both of its categories.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

UNCATEGORISED = "uncategorised"

_MMLU = {
    "STEM": "abstract_algebra astronomy college_biology college_chemistry college_computer_science "
    "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
    "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
    "high_school_mathematics high_school_physics high_school_statistics machine_learning",
    "humanities": "formal_logic high_school_european_history high_school_us_history "
    "high_school_world_history international_law jurisprudence logical_fallacies moral_disputes "
    "moral_scenarios philosophy prehistory professional_law world_religions",
    "social sciences": "econometrics high_school_geography high_school_government_and_politics "
    "high_school_macroeconomics high_school_microeconomics high_school_psychology human_sexuality "
    "professional_psychology public_relations security_studies sociology us_foreign_policy",
    "other": "anatomy business_ethics clinical_knowledge college_medicine global_facts human_aging "
    "management marketing medical_genetics miscellaneous nutrition professional_accounting "
    "professional_medicine virology",
}

_CEVAL = {
    "STEM": "computer_network operating_system computer_architecture college_programming "
    "college_physics college_chemistry advanced_mathematics probability_and_statistics "
    "discrete_mathematics electrical_engineer metrology_engineer high_school_mathematics "
    "high_school_physics high_school_chemistry high_school_biology middle_school_mathematics "
    "middle_school_biology middle_school_physics middle_school_chemistry veterinary_medicine",
    "Social Science": "college_economics business_administration marxism mao_zedong_thought "
    "education_science teacher_qualification high_school_politics high_school_geography "
    "middle_school_politics middle_school_geography",
    "Humanities": "modern_chinese_history ideological_and_moral_cultivation logic law "
    "chinese_language_and_literature art_studies professional_tour_guide legal_professional "
    "high_school_chinese high_school_history middle_school_history",
    "Other": "civil_servant sports_science plant_protection basic_medicine clinical_medicine "
    "urban_and_rural_planner accountant fire_engineer environmental_impact_assessment_engineer "
    "tax_accountant physician",
}

_CMMLU = {
    "STEM": "anatomy astronomy college_actuarial_science college_engineering_hydrology "
    "college_mathematics college_medical_statistics computer_science conceptual_physics "
    "electrical_engineering elementary_mathematics genetics high_school_biology "
    "high_school_chemistry high_school_mathematics high_school_physics machine_learning virology",
    "Humanities": "arts chinese_history chinese_literature college_law global_facts "
    "international_law jurisprudence logical marxist_theory philosophy professional_law "
    "world_history world_religions",
    "Social Science": "ancient_chinese business_ethics chinese_civil_service_exam "
    "chinese_food_culture chinese_foreign_policy chinese_teacher_qualification college_education "
    "economics education elementary_chinese ethnology high_school_geography high_school_politics "
    "journalism management marketing modern_chinese professional_accounting "
    "professional_psychology public_relations security_study sociology",
    "Other": "agronomy chinese_driving_rule clinical_knowledge college_medicine computer_security "
    "construction_project_management elementary_commonsense "
    "elementary_information_and_technology food_science human_sexuality legal_and_moral_basis "
    "nutrition professional_medicine sports_science traditional_chinese_medicine",
}
_CMMLU_CHINA_SPECIFIC = (
    "ancient_chinese chinese_civil_service_exam chinese_driving_rule chinese_food_culture "
    "chinese_foreign_policy chinese_history chinese_literature chinese_teacher_qualification "
    "construction_project_management elementary_chinese elementary_commonsense ethnology "
    "high_school_politics modern_chinese traditional_chinese_medicine"
)


def _invert(mapping: dict[str, str]) -> dict[str, tuple[str, ...]]:
    return {
        subject: (category,)
        for category, subjects in mapping.items()
        for subject in subjects.split()
    }


def _cmmlu() -> dict[str, tuple[str, ...]]:
    mapping = _invert(_CMMLU)
    for subject in _CMMLU_CHINA_SPECIFIC.split():
        mapping[subject] += ("China specific",)
    return mapping


# benchmark -> subject -> its categories (one, or two for CMMLU's China-specific subjects)
CATEGORIES: dict[str, dict[str, tuple[str, ...]]] = {
    "mmlu": _invert(_MMLU),
    "ceval": _invert(_CEVAL),
    "cmmlu": _cmmlu(),
}


def categories_of(benchmark: str, subject: str) -> tuple[str, ...]:
    """The categories of `subject`; an unknown subject is logged and reported as uncategorised."""
    categories = CATEGORIES[benchmark].get(subject)
    if categories is None:
        logger.warning(
            "subject %r is not in the %s category mapping: reported as %s",
            subject,
            benchmark,
            UNCATEGORISED,
        )
        return (UNCATEGORISED,)
    return categories
