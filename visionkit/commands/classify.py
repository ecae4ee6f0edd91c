"""`visionkit classify fit|validate|test ...` (LightningCLI) and `visionkit classify predict ...`."""

from __future__ import annotations

import argparse
import sys

from visionkit.commands.arguments import positive_int, split_checkpoints
from visionkit.commands.help_cache import print_help, wants_help

USAGE = """usage: visionkit classify {fit,validate,test,predict} [options]

  fit       train:       visionkit classify fit --config configs/classify/resnet18_finetune.yaml \\
                            --data.root DIR [--model.pretrained null|imagenet|PATH] \\
                            [--trainer.max_epochs N] [--trainer.default_root_dir OUT]
  validate  evaluate a checkpoint on the val split (same flags, plus --ckpt_path FILE)
  test      same as validate, logged as test_*
  predict   top-k classes of images: visionkit classify predict --ckpt FILE PATHS... [--out F]

Every constructor argument of the task (--model.*) and data module (--data.*) is a flag;
`visionkit classify fit --help` lists them all."""


def predict_main(argv: list[str]) -> int:
    """Parse `classify predict` options and write top-k predictions."""
    parser = argparse.ArgumentParser(prog="visionkit classify predict",
                                     description="Top-k classes for image files, folders or globs.")
    parser.add_argument("--ckpt", required=True, nargs="+", metavar="CKPT",
                        help="checkpoint written by `classify fit`; several (names ending .ckpt, "
                             ".pt or .pth) predict as an ensemble")
    parser.add_argument("--vote", choices=["soft", "majority"], default="soft",
                        help="how an ensemble combines: soft (mean probability, default) or "
                             "majority (share of the members' top-1 votes)")
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

    out = predict_to_file(ckpts, [*images, *args.sources, *args.source], out=args.out,
                          top_k=args.top_k, batch_size=args.batch_size,
                          num_workers=args.num_workers, device=args.device,
                          sort_into=args.sort_into, skip_invalid=args.skip_invalid,
                          vote=args.vote, tta=args.tta)
    print(f"predictions written to {out}")
    if args.sort_into:
        print(f"images copied into {args.sort_into}/<predicted class>/")
    return 0


def main(argv: list[str]) -> int:
    """Dispatch to LightningCLI (fit/validate/test) or to predict."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] == "predict":
        return predict_main(argv[1:])
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
