"""`visionkit demo`: the offline demo on embedded synthetic data with the shipped weights."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    """Run the demo (or remake its weights) and print where the results are."""
    parser = argparse.ArgumentParser(prog="visionkit demo", description=(
        "Offline demo: the shipped Faster R-CNN detects shapes in fresh synthetic scenes (COCO mAP "
        "against their ground truth) and the shipped ResNet-18 classifies shapes; writes "
        "runs/demo/index.md with the images."))
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the demo's images")
    parser.add_argument("--make-weights", nargs="*", choices=["detector", "classifier"], default=None,
                        help="instead: retrain the demo models (default both; about 20 min on 2 CPU "
                             "cores) from scratch and rewrite weights/demo_shapes_*.ckpt")
    args = parser.parse_args(argv)
    if args.make_weights is not None:
        from visionkit.demo.weights import make_demo_weights

        parts = tuple(args.make_weights) or ("detector", "classifier")
        record = make_demo_weights(parts)
        print(f"demo weights written ({', '.join(parts)}): detector val mAP@0.5 "
              f"{record['detector']['val_map50']}, classifier val acc "
              f"{record['classifier']['best_val_acc']}; details in weights/demo_weights.json")
        return 0
    from visionkit.demo.run import run_demo

    out = run_demo(args.out, seed=args.seed)
    print(f"demo finished: report {out / 'index.md'} (detections.png, predictions.png, "
          f"evaluate/metrics.json, detect/results.json)")
    return 0
