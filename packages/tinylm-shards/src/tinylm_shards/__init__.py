"""The TinyLM shard contract as code: format names and schemas, manifest, writer, reader, segments.

The retrieval index contract is `tinylm_shards.retrieval` (the `retrieval` extra; imported
only when asked for, so this import stays light).

Writers (tinylm-data) and readers (tinylm-train, tinylm-eval) share this package instead of
each keeping a copy of the format. docs/shard-format.md describes it in words.
"""

from importlib.metadata import version as _version

from .arrow import list_array, list_parts
from .block import Block, check_row
from .errors import ShardError
from .files import atomic_path, sha256_file
from .formats import (
    FORMATS,
    PACKED_BLOCKS,
    PREFERENCE_PAIRS,
    RETRIEVAL_INDEX,
    SFT_BLOCKS,
    ShardFormat,
    format_named,
)
from .manifest import (
    LATEST,
    MANIFEST,
    Manifest,
    load_manifest,
    parse_manifest,
    resolve_version_dir,
    write_manifest,
)
from .pairs import PairReader, PairWriter, PreferencePair, answer_mask, check_pair, truncate_pair
from .reader import DatasetReader, ShardFile
from .segments import IGNORE_INDEX, cu_seqlens, labels, position_ids, segment_bounds
from .squad import SquadFileError, SquadRecord, squad_records
from .verify import dataset_problems, shard_problems, verify_shards
from .writer import PARQUET_OPTIONS, ROW_GROUP_SIZE, ShardWriter

__version__ = _version("tinylm-shards")

__all__ = [
    "FORMATS",
    "IGNORE_INDEX",
    "LATEST",
    "MANIFEST",
    "PACKED_BLOCKS",
    "PARQUET_OPTIONS",
    "PREFERENCE_PAIRS",
    "RETRIEVAL_INDEX",
    "PairReader",
    "PairWriter",
    "PreferencePair",
    "ROW_GROUP_SIZE",
    "SFT_BLOCKS",
    "Block",
    "DatasetReader",
    "Manifest",
    "ShardError",
    "ShardFile",
    "ShardFormat",
    "ShardWriter",
    "SquadFileError",
    "SquadRecord",
    "__version__",
    "answer_mask",
    "atomic_path",
    "check_pair",
    "check_row",
    "cu_seqlens",
    "dataset_problems",
    "format_named",
    "labels",
    "list_array",
    "list_parts",
    "load_manifest",
    "parse_manifest",
    "position_ids",
    "resolve_version_dir",
    "segment_bounds",
    "sha256_file",
    "shard_problems",
    "squad_records",
    "truncate_pair",
    "verify_shards",
    "write_manifest",
]
