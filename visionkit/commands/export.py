"""`visionkit export --ckpt CKPT --format onnx|torchscript [--out FILE]`: a deployable model file."""

from __future__ import annotations

import argparse


def image_size(text: str) -> tuple[int, int]:
    """`"480x640"` → `(480, 640)` (height, width)."""
    try:
        height, width = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, e.g. 480x640, got {text!r}") from None
    return height, width


def main(argv: list[str]) -> int:
    """Export a classification or detection checkpoint; print where the file went."""
    parser = argparse.ArgumentParser(
        prog="visionkit export",
        description="Trace a classification or detection checkpoint into a TorchScript or ONNX "
                    "file with its classes and preprocessing embedded. Classifiers take a "
                    "normalised [B, 3, S, S] batch and return logits; detectors take one "
                    "[3, H, W] image in 0-1 of exactly the exported size and return boxes, "
                    "labels, scores.")
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint written by `visionkit classify fit` or `visionkit detect fit`")
    parser.add_argument("--format", required=True, metavar="{onnx,torchscript}",
                        help="onnx (ONNX Runtime and others) or torchscript")
    parser.add_argument("--out", default=None,
                        help="output file (default: beside the checkpoint, <stem>.onnx or "
                             "<stem>.torchscript.pt)")
    parser.add_argument("--image-size", type=image_size, default=None, metavar="HxW",
                        help="detectors only: the one image size the exported file accepts "
                             "(default: the most common size of its training images, else its "
                             "min_size square)")
    args = parser.parse_args(argv)  # before the heavy imports: --help is instant
    from visionkit.inference.export import export_model, read_export_metadata

    path = export_model(args.ckpt, args.format, args.out, image_size=args.image_size)
    print(f"{args.format} model written to {path}; input: {read_export_metadata(path)['input']}")
    return 0
