"""torch.distributed helpers that also work in a single process."""

from __future__ import annotations

from typing import Any


def gather_objects(obj: Any) -> list[Any]:
    """``[obj]``, or every process's ``obj`` (rank order) when torch.distributed runs several."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, obj)
    return parts
