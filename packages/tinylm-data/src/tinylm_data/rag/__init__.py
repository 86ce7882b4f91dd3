"""Retrieval data: SQuAD-layout readers, chunking, the BM25 index build and its quality."""

from .squad import SquadFileError, SquadRecord, squad_contexts, squad_records

__all__ = ["SquadFileError", "SquadRecord", "squad_contexts", "squad_records"]
