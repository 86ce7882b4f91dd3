"""Instruction-tuning data: readers into one conversation schema, chat templates, label masks,
augmentation, truncation, held-out split, and packing into `tinylm-sft-blocks` shards."""

from .augment import augment_instruction
from .build import EmptySftBuild, SftResult, run_sft_build
from .config import SftConfig, SftSourceConfig
from .conversation import Conversation
from .encode import ConversationEncoder, Encoded, EncodeError
from .readers import SFT_KINDS, read_conversations
from .templates import TEMPLATES, Template

__all__ = [
    "SFT_KINDS",
    "TEMPLATES",
    "Conversation",
    "ConversationEncoder",
    "EmptySftBuild",
    "EncodeError",
    "Encoded",
    "SftConfig",
    "SftResult",
    "SftSourceConfig",
    "Template",
    "augment_instruction",
    "read_conversations",
    "run_sft_build",
]
