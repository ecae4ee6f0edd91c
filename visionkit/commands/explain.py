"""`visionkit explain gradcam --ckpt CKPT --source IMG...`: heatmaps of what drove a prediction."""

from __future__ import annotations

import argparse
import sys

USAGE = """usage: visionkit explain gradcam --ckpt CKPT --source IMG... [options]

  gradcam   Grad-CAM / Grad-CAM++ heatmaps of a classification checkpoint (or of one detection
            of a detection checkpoint), overlaid on each image; PNGs and gradcam.json in --out
            (`gradcam --help`)."""


def gradcam_main(argv: list[str]) -> int:
    """Parse `explain gradcam` options and write one PNG per image."""
    from visionkit.explain.gradcam import METHODS

    parser = argparse.ArgumentParser(prog="visionkit explain gradcam",
                                     description="Grad-CAM heatmaps of a classifier's decision, or of a "
                                                 "detector's box.")
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint written by `classify fit` or `detect fit`")
    parser.add_argument("sources", nargs="*", help="image files, folders or glob patterns")
    parser.add_argument("--source", nargs="+", action="extend", default=[],
                        help="same as positional PATHs")
    parser.add_argument("--layer", default=None,
                        help="dotted module name, e.g. backbone.net.layer3 (default: last conv block)")
    parser.add_argument("--class", dest="target", default=None,
                        help="class name or index to explain (default: the predicted class); "
                             "for a detector, the detection's rank (default 0: top score)")
    parser.add_argument("--detection", dest="target", help="same as --class, for detectors")
    parser.add_argument("--method", choices=METHODS, default="gradcam")
    parser.add_argument("--out", default="runs/explain/gradcam", help="output folder")
    parser.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda:0…")
    args = parser.parse_args(argv)

    from visionkit.device import auto_device
    from visionkit.inference.gradcam_files import gradcam_files

    rows = gradcam_files(args.ckpt, [*args.sources, *args.source], args.out, layer=args.layer,
                         target=args.target, method=args.method, device=auto_device(args.device))
    written = [r for r in rows if r.get("png")]
    print(f"{len(written)} heatmap(s) written to {args.out} (index: {args.out}/gradcam.json)")
    lacking = [r for r in rows if not r.get("png")]
    if lacking:  # a detection rank beyond what an image has
        print(f"no heatmap for {len(lacking)} image(s) without a detection #{args.target} "
              f"(e.g. {lacking[0]['path']} has {lacking[0]['detections']})", file=sys.stderr)
    return 0 if written else 1


def main(argv: list[str]) -> int:
    """Dispatch `explain` subcommands (gradcam)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] != "gradcam":
        print(f"visionkit explain: unknown subcommand {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return gradcam_main(argv[1:])
