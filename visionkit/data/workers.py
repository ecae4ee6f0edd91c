"""How DataLoader worker processes start.

Forking a process that runs other threads copies the locks those threads hold at that instant,
and a child that then needs one waits forever: the loader waits on it, and a DDP peer waits on
the loader. A DDP rank is such a process (gloo's and the TCP store's threads run beside the
training loop), so there workers start from a fork server: a single-threaded process, started
once per rank, from which each worker forks (Python 3.14's default start method on Linux).
A single process keeps the platform's default: fork, where workers start at once instead of
importing torch first.
"""

from __future__ import annotations

import multiprocessing

import torch.distributed as dist


def worker_start_method(num_workers: int) -> str | None:
    """A DataLoader's ``multiprocessing_context``: "forkserver" in a process of an initialised
    torch.distributed group whose default is fork, else None (the default; always None without
    workers, where DataLoader refuses a context)."""
    if num_workers == 0 or not (dist.is_available() and dist.is_initialized()):
        return None
    methods = multiprocessing.get_all_start_methods()
    default = multiprocessing.get_start_method(allow_none=True) or methods[0]
    return "forkserver" if default == "fork" and "forkserver" in methods else None
