"""One intra-op thread for these small-model tests: on a shared machine, thread oversubscription
makes each tiny op wait on busy cores (measured: 40x slower with 2 threads under load)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Run the test with one torch thread, then restore the previous count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
