"""`--help` of the LightningCLI commands in milliseconds: their text is kept after the first run.

Building the help of `classify fit` or `detect fit` means importing torch and Lightning (5-12 s
on a small machine). The text depends only on visionkit's code, the versions of torch,
Lightning and jsonargparse, the arguments and the terminal width, so it is stored under
``$XDG_CACHE_HOME/visionkit/help/`` (default ``~/.cache``) keyed by all of them; any change to
one makes a new key. Set ``VISIONKIT_HELP_CACHE=0`` to always build it afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from visionkit.fileio import atomic_open

PACKAGE = Path(__file__).resolve().parents[1]
DEPENDENCIES = ("torch", "lightning", "jsonargparse")


def wants_help(argv: list[str]) -> bool:
    """True when ``argv`` asks for help (``-h``/``--help`` anywhere)."""
    return any(a in ("-h", "--help") for a in argv)


def _key(argv: list[str]) -> str:
    digest = hashlib.sha256()
    for part in (sys.version, *argv, str(shutil.get_terminal_size().columns)):
        digest.update(part.encode() + b"\0")
        if os.path.isfile(part):  # a --config file: its defaults show in the help
            stat = os.stat(part)
            digest.update(f"{stat.st_mtime_ns}:{stat.st_size}\0".encode())
    for name in DEPENDENCIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            digest.update(f"{name}={metadata.version(name)}\0".encode())
    for path in sorted(PACKAGE.rglob("*.py")):  # visionkit's code: any edit is a new key
        stat = path.stat()
        digest.update(f"{path.relative_to(PACKAGE)}:{stat.st_mtime_ns}:{stat.st_size}\0".encode())
    return digest.hexdigest()[:32]


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "visionkit" / "help"


def print_help(argv: list[str], build: Callable[[], object]) -> int:
    """Print the help ``build()`` would print for ``argv``: from the cache, else built and kept."""
    use_cache = os.environ.get("VISIONKIT_HELP_CACHE", "1") != "0"
    path = _cache_dir() / f"{_key(argv)}.txt" if use_cache else None
    if path is not None and path.is_file():
        sys.stdout.write(path.read_text(encoding="utf-8"))
        return 0
    buffer, code = io.StringIO(), 0
    with contextlib.redirect_stdout(buffer):
        try:
            build()
        except SystemExit as stop:  # argparse exits after printing help
            code = stop.code if isinstance(stop.code, int) else 0
    text = buffer.getvalue()
    sys.stdout.write(text)
    if path is not None and code == 0 and text:
        with contextlib.suppress(OSError), atomic_open(path, "w", encoding="utf-8") as f:
            f.write(text)  # (a read-only home: no cache, same help)
    return code
