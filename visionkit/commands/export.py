"""`visionkit export --ckpt CKPT --format onnx|torchscript [--out FILE] [--int8 --calib DIR|JSON]`:
a deployable model file, int8 (ONNX Runtime) on request."""

from __future__ import annotations

import argparse

from visionkit.commands.arguments import positive_int


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
    parser.add_argument("--int8", action="store_true",
                        help="quantize the ONNX file to int8 (ONNX Runtime's static quantization; "
                             "detectors: backbone, FPN and RPN head), calibrated on --calib")
    parser.add_argument("--calib", default=None, metavar="DIR|JSON",
                        help="calibration images for --int8: a folder (recursively) or a COCO JSON's "
                             "images; training images, not the ones you evaluate on")
    parser.add_argument("--calib-count", type=positive_int, default=300,
                        help="calibration images used, a seeded sample (default 300)")
    args = parser.parse_args(argv)  # before the heavy imports: --help is instant
    if args.int8 and args.calib is None:
        parser.error("--int8 needs --calib DIR|JSON (images to calibrate activation ranges on)")
    if args.calib is not None and not args.int8:
        parser.error("--calib is for --int8")
    from visionkit.inference.export import export_model, read_export_metadata

    path = export_model(args.ckpt, args.format, args.out,
                        int8_calib=args.calib if args.int8 else None, calib_count=args.calib_count)
    meta = read_export_metadata(path)
    int8 = (f"; int8, calibrated on {meta['int8']['calibration_images']} images of {args.calib}"
            if "int8" in meta else "")
    print(f"{args.format} model written to {path}; input: {meta['input']}{int8}")
    return 0
