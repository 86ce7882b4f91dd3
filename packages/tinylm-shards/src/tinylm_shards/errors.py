"""The one error every part of the contract raises."""

from __future__ import annotations


class ShardError(ValueError):
    """A dataset that does not satisfy the shard contract, or fails its checks."""
