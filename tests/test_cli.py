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


def test_warnings_are_one_line_in_our_words():
    script = ("import warnings, sys; from visionkit.cli import main; main(['--version']); "
              "warnings.warn('3 invalid records left out', stacklevel=1)")
    err = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stderr
    assert err == "warning: 3 invalid records left out\n"


def test_output_into_a_closed_pipe_is_quiet():
    # help text longer than a pipe's buffer, read by `head -1`: the rest meets a closed pipe
    script = ("from visionkit import cli; cli.usage = lambda: 'usage line\\n' * 100000; "
              "raise SystemExit(cli.main(['--help']))")
    proc = subprocess.run(f"{sys.executable} -c \"{script}\" | head -1", shell=True,
                          capture_output=True, text=True, check=True)
    assert proc.stdout == "usage line\n" and proc.stderr == ""


HELP_WITHOUT_TORCH = """
import contextlib, sys
from visionkit.cli import main
for command in (["export"], ["detect", "predict"], ["classify", "predict"]):
    with contextlib.suppress(SystemExit):
        main([*command, "--help"])
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "lightning"}))
"""


def test_help_of_file_commands_imports_no_torch_and_lists_every_format():
    from visionkit.inference.export import FORMATS

    out = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True,
                         check=True).stdout
    assert "usage: visionkit detect predict" in out and "usage: visionkit classify predict" in out
    assert all(f in out.split("usage: visionkit detect predict")[0] for f in FORMATS)
    assert out.rstrip().endswith("[]"), "--help imported torch or lightning (seconds, not ms)"
