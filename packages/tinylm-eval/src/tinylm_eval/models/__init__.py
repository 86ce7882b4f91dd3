"""Models behind one interface (`base.LanguageModel`): `hf.HFModel` (transformers; imports torch)
and `dummy.DummyModel` (hash-based scores for tests; no torch)."""

from tinylm_eval.models.base import ChoicePrompt, GenerationOptions, LanguageModel
from tinylm_eval.models.dummy import DummyModel

__all__ = ["ChoicePrompt", "DummyModel", "GenerationOptions", "LanguageModel"]
