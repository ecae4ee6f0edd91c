"""Expanding user-given sources (files, folders, glob patterns) into image file lists."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from visionkit.data.images import is_image_file
from visionkit.errors import DatasetError


def expand_image_sources(sources: Sequence[str]) -> list[Path]:
    """Image files named by `sources`: files as given, folders recursively, globs expanded."""
    if not sources:
        raise DatasetError("no source given: pass image files, folders or glob patterns")
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
            if not images:
                raise DatasetError(f"{path}: folder holds no image files")
            found += images
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(source):
            matches = sorted(Path(p) for p in glob.glob(source, recursive=True))
            images = [p for p in matches if p.is_file() and is_image_file(p)]
            if not images:
                raise DatasetError(f"{source}: pattern matches no image files")
            found += images
        else:
            raise DatasetError(f"{source}: no such file or folder")
    return list(dict.fromkeys(found))
