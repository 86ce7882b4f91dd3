"""Subject → category mappings of MMLU (Hendrycks et al.), C-Eval and CMMLU (their released mappings)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

UNCATEGORISED = "uncategorised"

_MMLU = {
    "STEM": "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science "
    "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
    "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
    "high_school_mathematics high_school_physics high_school_statistics machine_learning medical_genetics "
    "virology college_medicine",
    "humanities": "formal_logic high_school_european_history high_school_us_history high_school_world_history "
    "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy prehistory "
    "professional_law world_religions",
    "social sciences": "econometrics high_school_geography high_school_government_and_politics "
    "high_school_macroeconomics high_school_microeconomics high_school_psychology human_sexuality "
    "professional_psychology public_relations security_studies sociology us_foreign_policy",
    "other": "business_ethics clinical_knowledge global_facts human_aging management marketing miscellaneous "
    "nutrition professional_accounting professional_medicine",
}

_CEVAL = {
    "STEM": "computer_network operating_system computer_architecture college_programming college_physics "
    "college_chemistry advanced_mathematics probability_and_statistics discrete_mathematics electrical_engineer "
    "metrology_engineer high_school_mathematics high_school_physics high_school_chemistry high_school_biology "
    "middle_school_mathematics middle_school_biology middle_school_physics middle_school_chemistry "
    "veterinary_medicine",
    "Social Science": "college_economics business_administration marxism mao_zedong_thought education_science "
    "teacher_qualification high_school_politics high_school_geography middle_school_politics "
    "middle_school_geography",
    "Humanities": "modern_chinese_history ideological_and_moral_cultivation logic law "
    "chinese_language_and_literature art_studies professional_tour_guide legal_professional "
    "high_school_chinese high_school_history middle_school_history",
    "Other": "civil_servant sports_science plant_protection basic_medicine clinical_medicine urban_and_rural_planner "
    "accountant fire_engineer environmental_impact_assessment_engineer tax_accountant physician",
}

_CMMLU = {
    "STEM": "anatomy astronomy college_actuarial_science college_engineering_hydrology college_mathematics "
    "college_medical_statistics computer_science conceptual_physics electrical_engineering "
    "elementary_mathematics genetics high_school_biology high_school_chemistry high_school_mathematics "
    "high_school_physics machine_learning virology",
    "Humanities": "arts chinese_history chinese_literature college_law global_facts international_law "
    "jurisprudence logical marxist_theory philosophy professional_law world_history world_religions",
    "Social Science": "business_ethics college_education economics education high_school_geography journalism "
    "management marketing professional_accounting professional_psychology public_relations security_study "
    "sociology",
    "Other": "agronomy clinical_knowledge college_medicine computer_security elementary_commonsense food_science "
    "human_sexuality legal_and_moral_basis nutrition professional_medicine sports_science",
    "China specific": "ancient_chinese chinese_civil_service_exam chinese_driving_rule chinese_food_culture "
    "chinese_foreign_policy chinese_teacher_qualification construction_project_management "
    "elementary_chinese elementary_information_and_technology ethnology high_school_politics "
    "modern_chinese traditional_chinese_medicine",
}


def _invert(mapping: dict[str, str]) -> dict[str, str]:
    return {
        subject: category for category, subjects in mapping.items() for subject in subjects.split()
    }


CATEGORIES: dict[str, dict[str, str]] = {
    "mmlu": _invert(_MMLU),
    "ceval": _invert(_CEVAL),
    "cmmlu": _invert(_CMMLU),
}


def category_of(benchmark: str, subject: str) -> str:
    """The category of `subject`; an unknown subject (an authored sample's) is logged and left uncategorised."""
    category = CATEGORIES[benchmark].get(subject)
    if category is None:
        logger.warning(
            "subject %r is not in the %s category mapping: reported as %s",
            subject,
            benchmark,
            UNCATEGORISED,
        )
        return UNCATEGORISED
    return category
