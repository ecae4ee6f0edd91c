"""`visionkit classify fit|validate|test ...` (LightningCLI) and `visionkit classify predict ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionkit.commands.arguments import positive_int, split_checkpoints
from visionkit.commands.help_cache import print_help, wants_help

USAGE = """usage: visionkit classify {fit,validate,test,bag,predict} [options]

  fit       train:       visionkit classify fit --config configs/classify/resnet18_finetune.yaml \\
                            --data.root DIR [--model.pretrained null|imagenet|PATH] \\
                            [--trainer.max_epochs N] [--trainer.default_root_dir OUT]
  validate  evaluate a checkpoint on the val split (same flags, plus --ckpt_path FILE)
  test      same as validate, logged as test_*
  bag       N models on bootstrap resamples and their ensemble: --n N plus fit's flags
  predict   top-k classes of images: visionkit classify predict --ckpt FILE PATHS... [--out F]

Every constructor argument of the task (--model.*) and data module (--data.*) is a flag;
`visionkit classify fit --help` lists them all."""


def predict_main(argv: list[str]) -> int:
    """Parse `classify predict` options and write top-k predictions."""
    parser = argparse.ArgumentParser(prog="visionkit classify predict",
                                     description="Top-k classes for image files, folders or globs.")
    parser.add_argument("--ckpt", required=True, nargs="+", metavar="CKPT",
                        help="checkpoint written by `classify fit` (or its .onnx export); several "
                             "(names ending .ckpt, .pt, .pth or .onnx) predict as an ensemble")
    parser.add_argument("--vote", choices=["soft", "majority"], default="soft",
                        help="how an ensemble combines: soft (mean probability, default) or "
                             "majority (share of the members' top-1 votes)")
    parser.add_argument("--backend", choices=["pytorch", "onnxruntime"], default="pytorch",
                        help="onnxruntime: export each checkpoint to ONNX beside --out and run that, "
                             "reused while the checkpoint is unchanged (a .onnx --ckpt from `visionkit "
                             "export` always runs in ONNX Runtime)")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average each model over the image and its "
                             "mirror image")
    parser.add_argument("sources", nargs="*", help="image files, folders or glob patterns")
    parser.add_argument("--source", action="append", default=[], help="same as a positional PATH")
    parser.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default 5)")
    parser.add_argument("--out", default=None,
                        help="output .csv or .json (default runs/classify/predict/predictions.csv)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda:0…")
    parser.add_argument("--sort-into", default=None,
                        help="also copy each image into DIR/<predicted class>/")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="leave unreadable images out (listed in skipped_files.txt beside "
                             "--out) instead of stopping")
    args = parser.parse_args(argv)  # before the heavy imports: --help is instant
    ckpts, images = split_checkpoints(args.ckpt)
    from visionkit.inference.classification import predict_to_file

    if args.backend == "onnxruntime":
        from visionkit.inference.onnx_backend import as_onnx_files

        folder = Path(args.out or "runs/classify/predict/predictions.csv").parent
        ckpts = as_onnx_files(ckpts, folder)
        print(f"running {', '.join(ckpts)} in ONNX Runtime")

    out = predict_to_file(ckpts, [*images, *args.sources, *args.source], out=args.out,
                          top_k=args.top_k, batch_size=args.batch_size,
                          num_workers=args.num_workers, device=args.device,
                          sort_into=args.sort_into, skip_invalid=args.skip_invalid,
                          vote=args.vote, tta=args.tta)
    print(f"predictions written to {out}")
    if args.sort_into:
        print(f"images copied into {args.sort_into}/<predicted class>/")
    return 0


def bag_main(argv: list[str]) -> int:
    """`classify bag --n N [--out DIR] <fit flags>`: N bootstrap members and their ensemble."""
    parser = argparse.ArgumentParser(
        prog="visionkit classify bag",
        description="Bagging: train N models with the given `classify fit` flags, model i on a "
                    "bootstrap resample of the training split (seed i, recorded in its "
                    "checkpoints), then score each and their soft-vote ensemble on the val split.",
        epilog="Every other flag goes to `visionkit classify fit` (e.g. --config FILE).")
    parser.add_argument("--n", type=positive_int, default=5, help="members (default 5)")
    parser.add_argument("--out", default="runs/classify/bag",
                        help="folder of the members' runs and bag.json (default runs/classify/bag)")
    args, fit_args = parser.parse_known_args(argv)
    import json

    from visionkit.fileio import write_json
    from visionkit.inference.ensemble import score_members
    from visionkit.tasks.bagging import fit_bag

    members, val_samples, classes = fit_bag(fit_args, args.n, args.out)
    report = {"members": [{"bootstrap_seed": m.seed, "best_val_acc": round(m.best_val_acc, 4),
                           "checkpoint": m.best_model_path} for m in members],
              **score_members([m.best_model_path for m in members], val_samples, classes)}
    path = write_json(Path(args.out) / "bag.json", report)
    print(json.dumps({k: v for k, v in report.items() if k != "members"}))
    print(f"{args.n} members (best val_acc {', '.join(f'{m.best_val_acc:.4f}' for m in members)}); "
          f"soft-vote ensemble val_acc {report['ensemble_acc']:.4f} against the members' mean "
          f"{report['member_mean_acc']:.4f}; written to {path}")
    return 0


def main(argv: list[str]) -> int:
    """Dispatch to LightningCLI (fit/validate/test), to predict or to bag."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] == "predict":
        return predict_main(argv[1:])
    if argv[0] == "bag":
        return bag_main(argv[1:])
    if argv[0] not in ("fit", "validate", "test"):
        print(f"visionkit classify: unknown subcommand {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    if wants_help(argv):  # from the help cache: milliseconds instead of seconds of imports
        return print_help(["classify", *argv], lambda: _run(argv))
    _run(argv)
    return 0


def _run(argv: list[str]) -> None:
    from visionkit.tasks.classification import ClassificationTask
    from visionkit.tasks.cli import run_cli
    from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule

    run_cli(ClassificationTask, ImageFolderDataModule, argv, prog="visionkit classify")
