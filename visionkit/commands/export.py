"""`visionkit export --ckpt CKPT --format onnx|torchscript [--out FILE]`: a deployable model file."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    """Export a classification or detection checkpoint; print where the file went."""
    parser = argparse.ArgumentParser(
        prog="visionkit export",
        description="Turn a classification or detection checkpoint into a TorchScript or ONNX "
                    "file with its classes and preprocessing embedded. Classifiers take a "
                    "normalised [B, 3, S, S] batch and return logits; detectors take one "
                    "[3, H, W] image in 0-1 of any size and return boxes, labels, scores.")
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint written by `visionkit classify fit` or `visionkit detect fit`")
    parser.add_argument("--format", required=True, metavar="{onnx,torchscript}",
                        help="onnx (ONNX Runtime and others) or torchscript")
    parser.add_argument("--out", default=None,
                        help="output file (default: beside the checkpoint, <stem>.onnx or "
                             "<stem>.torchscript.pt)")
    args = parser.parse_args(argv)  # before the heavy imports: --help is instant
    from visionkit.inference.export import export_model, read_export_metadata

    path = export_model(args.ckpt, args.format, args.out)
    print(f"{args.format} model written to {path}; input: {read_export_metadata(path)['input']}")
    return 0
