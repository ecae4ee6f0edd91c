"""`visionkit demo`: the offline demo (synthetic data, a short training run, predictions)."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    """Run the demo and print where its report is."""
    parser = argparse.ArgumentParser(prog="visionkit demo", description=(
        "Offline demo: train a ResNet-18 on embedded synthetic shapes, classify held-out "
        "images, write runs/demo/index.md with the images."))
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from visionkit.demo import run_demo

    out = run_demo(args.out, epochs=args.epochs, seed=args.seed)
    print(f"demo finished: report {out / 'index.md'}, predictions {out / 'predictions.png'}, "
          f"metrics {out / 'metrics.json'}")
    return 0
