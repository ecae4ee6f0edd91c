"""The `visionkit` command: help lists every subcommand; unknown names are one clear line."""

import subprocess
import sys
from pathlib import Path

from visionkit.cli import COMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name}" in out


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_classify_help_names_its_subcommands(capsys):
    assert main(["classify", "--help"]) == 0
    out = capsys.readouterr().out
    for sub in ("fit", "validate", "test", "predict"):
        assert sub in out


def test_console_script_and_tool_wrapper_run():
    result = subprocess.run([sys.executable, "-m", "visionkit.cli", "--help"], capture_output=True,
                            text=True, check=True)
    assert "classify" in result.stdout
    tool = Path(__file__).resolve().parents[1] / "tools" / "benchmark.py"
    result = subprocess.run([sys.executable, str(tool), "--help"], capture_output=True,
                            text=True, check=True)
    assert "transfer" in result.stdout


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    assert main(["classify", "predict", "--ckpt", str(tmp_path / "none.ckpt"), str(img)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "weights file not found" in err


def test_empty_source_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["classify", "predict", "--ckpt", "x.ckpt", str(tmp_path / "empty")]) == 1
    assert "holds no image files" in capsys.readouterr().err
