"""Progress bars for long loops: drawn on a terminal, left out of logs and captured output.

A bar redraws itself in place with carriage returns; where stderr is not a terminal (a log file,
CI, a pipe) every redraw is kept, and its last state appears twice (the final update, then the
close). Those outputs get the command's summary line instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar (``options`` as tqdm's) that shows only when ``enabled`` and stderr is a terminal.

    Args:
        iterable: what to iterate over, or None for a bar advanced with ``update``.
        enabled: False hides the bar wherever it would show.
        **options: tqdm's keywords (``total``, ``desc``, ``unit``, ``leave``...).
    """
    return tqdm(iterable, disable=None if enabled else True, **options)
