"""`visionkit summary MODEL_OR_CKPT`: per-layer shapes, parameters, MACs, memory, receptive field.

Detectors resize their input to their own `min_size` inside the model, so their receptive fields
are in the pixels of the image as given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("table", "json", "csv")


def main(argv: list[str]) -> int:
    """Print (or write) the layer summary of a backbone, detector or checkpoint."""
    parser = argparse.ArgumentParser(
        prog="visionkit summary",
        description="Per layer: output shape, parameters, multiply-accumulates, fp32 output memory "
                    "and receptive field (size / jump / start in input pixels), with totals.")
    parser.add_argument("model", metavar="MODEL_OR_CKPT",
                        help="backbone name (e.g. resnet18, built with 1000 classes), detector name "
                             "(e.g. fasterrcnn_resnet50_fpn, 91 classes) or a checkpoint written by "
                             "`classify fit` or `detect fit`")
    parser.add_argument("--input", default=None, metavar="CxHxW",
                        help="input shape (default: the model's input size, e.g. 3x224x224)")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--out", default=None, help="write the table/JSON/CSV to this file")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="also draw per-layer params, MACs, memory and receptive field")
    args = parser.parse_args(argv)

    from visionkit.errors import ConfigError
    from visionkit.explain.summary import layer_summary
    from visionkit.explain.summary_format import format_csv, format_json, format_table
    from visionkit.fileio import atomic_open
    from visionkit.inference.summary_targets import parse_shape, summary_target

    target = summary_target(args.model)
    shape = parse_shape(args.input) if args.input else target.default_shape
    try:
        summary = layer_summary(target.model, target.example(shape), spatial_dims=len(shape) - 1)
    except RuntimeError as err:  # wrong channel count, an input smaller than a kernel, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--input {'x'.join(map(str, shape))}: {args.model} cannot run on this "
                          f"input ({reason})") from None
    text = {"table": format_table, "json": format_json, "csv": format_csv}[args.format](summary)
    if args.out:
        with atomic_open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"summary written to {args.out}")
    else:
        print(text)
    if args.plot:
        from visionkit.explain.summary_plot import plot_summary

        plot_summary(summary, args.plot, title=Path(args.model).name)
        print(f"plot written to {args.plot}")
    return 0
