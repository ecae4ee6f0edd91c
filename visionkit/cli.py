"""The `visionkit` command: dispatches the first word to a command module's `main(argv)`."""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings

# name -> (module with main(argv) -> int, one-line help). Modules import lazily so --help is instant.
COMMANDS: dict[str, tuple[str, str]] = {
    "classify": ("visionkit.commands.classify", "fit/validate/test an image classifier; predict top-k"),
    "detect": ("visionkit.commands.detect", "train/validate/test detectors; predict on images and videos"),
    "data": ("visionkit.commands.data", "convert VOC/YOLO/LabelMe labels to COCO (and back); check a set"),
    "evaluate": ("visionkit.commands.evaluate", "COCO mAP of a results JSON against a GT JSON"),
    "benchmark": ("visionkit.commands.benchmark", "speed/quality benchmarks, printed as JSON"),
    "demo": ("visionkit.commands.demo", "offline demo on embedded data; writes runs/demo/"),
    "summary": ("visionkit.commands.summary", "per-layer shapes, params, MACs, memory, receptive field"),
    "explain": ("visionkit.commands.explain", "Grad-CAM heatmaps of what drove a prediction"),
    "export": ("visionkit.commands.export", "checkpoint to TorchScript or ONNX, metadata embedded"),
}


def usage() -> str:
    """Top-level help text listing every subcommand."""
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: visionkit <command> [options]   (visionkit <command> --help for details)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def one_line(err: Exception) -> str:
    """The message of ``err``; for one re-raised from a DataLoader worker, the worker's own line."""
    text = str(err)
    if "\nOriginal Traceback" in text:  # torch's ExceptionWrapper: the cause is the last line
        text = re.sub(r"^[\w.]+: ", "", text.rstrip().splitlines()[-1])
    return text


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; clear one-line errors for visionkit's own exceptions."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


def _run(argv: list[str]) -> int:
    from visionkit.errors import VisionkitError
    from visionkit.runtime import warning_line

    warnings.formatwarning = warning_line
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from visionkit import __version__

        print(__version__)
        return 0
    if argv[0] not in COMMANDS:
        print(f"visionkit: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from visionkit.runtime import tune_allocator

    tune_allocator()
    module = importlib.import_module(COMMANDS[argv[0]][0])
    try:
        return int(module.main(argv[1:]) or 0)
    except VisionkitError as err:
        print(f"visionkit {argv[0]}: error: {one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
