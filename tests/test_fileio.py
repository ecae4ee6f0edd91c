"""Atomic writes: complete file or the old one, default permissions, no temp files left."""

import os
import stat

import pytest

from visionkit.fileio import atomic_open, atomic_write_with, write_json


def test_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert target.read_text().replace(" ", "").replace("\n", "") == '{"a":2}'
    assert os.listdir(tmp_path) == ["out.json"]


def test_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]

    def write_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, write_then_fail)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "p.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.json").stat().st_mode) == 0o644
