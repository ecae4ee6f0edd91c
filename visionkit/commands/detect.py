"""`visionkit detect fit|validate|test` (LightningCLI), `detect predict` and `detect proposals`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionkit.commands.arguments import positive_int, probability, split_checkpoints
from visionkit.commands.help_cache import print_help, wants_help

USAGE = """usage: visionkit detect {fit,validate,test,predict,proposals} [options]

  fit       train:   visionkit detect fit --config configs/detect/fasterrcnn_resnet18_fpn.yaml \\
                        --data.train_json F --data.val_json F --data.image_root DIR \\
                        [--model.pretrained null|coco|PATH] [--trainer.max_epochs N] \\
                        [--trainer.default_root_dir OUT]
  validate  COCO mAP of a checkpoint on val_json (same flags, plus --ckpt_path FILE)
  test      same on --data.test_json (default val_json), logged as test_*
  predict   detect objects: visionkit detect predict --weights CKPT|coco --source PATH|DIR|GLOB|VIDEO \\
                        [--out DIR]   (annotated images, results.json for `visionkit evaluate`, CSV)
  proposals selective-search proposals of a COCO set into the cache R-CNN / Fast R-CNN training
            reads, and their recall: visionkit detect proposals --json F [--image-root DIR]

Configs: configs/detect/<model name>.yaml. Every constructor argument of the task (--model.*)
and data module (--data.*) is a flag; `visionkit detect fit --help` lists them all. On CUDA,
training runs in mixed precision unless the config or a flag sets trainer.precision."""


def with_cuda_amp(argv: list[str]) -> list[str]:
    """``argv`` with 16-bit mixed precision on CUDA, placed so that any config or flag overrides it."""
    import torch

    if not torch.cuda.is_available() or any(a.startswith("--trainer.precision") for a in argv):
        return argv
    return [argv[0], "--trainer.precision", "16-mixed", *argv[1:]]


def predict_parser() -> argparse.ArgumentParser:
    """Options of `visionkit detect predict`."""
    parser = argparse.ArgumentParser(
        prog="visionkit detect predict",
        description="Detect objects in images, folders, globs or videos; write annotated images, "
                    "a COCO results JSON (original category ids), a CSV and a JSON-lines log.")
    parser.add_argument("--weights", required=True, nargs="+", metavar="WEIGHTS",
                        help="checkpoint written by `visionkit detect fit`, or 'coco' (torchvision's "
                             "COCO weights of --model, from weights/ or TORCH_HOME), or its .onnx export; "
                             "several (names ending .ckpt, .pt, .pth or .onnx) predict as an ensemble")
    parser.add_argument("--model", default="fasterrcnn_resnet50_fpn",
                        help="detector for --weights coco (fasterrcnn_resnet50_fpn, "
                             "fasterrcnn_mobilenet_v3_large_fpn)")
    parser.add_argument("sources", nargs="*", help="image files, folders, glob patterns or videos")
    parser.add_argument("--source", action="append", default=[], help="same as a positional PATH")
    parser.add_argument("--gt", default=None,
                        help="COCO JSON whose image ids the results use (its images are the "
                             "default source)")
    parser.add_argument("--image-root", default=None,
                        help="folder the --gt file names are relative to (default: the JSON's folder)")
    parser.add_argument("--out", default="runs/detect/predict", help="output folder")
    parser.add_argument("--score-thresh", type=probability, default=0.05,
                        help="lowest score kept in the results (default 0.05; a Soft-NMS "
                             "detector's lowered scores go down to 0.001)")
    parser.add_argument("--draw-thresh", type=probability, default=0.3,
                        help="lowest score drawn on the images (default 0.3)")
    parser.add_argument("--classes", nargs="+", default=None,
                        help="keep only these class names or category ids")
    parser.add_argument("--max-det", type=positive_int, default=100, help="detections per image, at most")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--num-workers", type=int, default=2, help="image-decoding processes")
    parser.add_argument("--device", default="auto", help="auto (cuda → mps → cpu), cpu, cuda:0…")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                        help="auto: bf16/fp16 autocast on CUDA, fp32 elsewhere")
    parser.add_argument("--backend", choices=["pytorch", "onnxruntime"], default="pytorch",
                        help="onnxruntime: export each checkpoint to ONNX in --out and run that, "
                             "reused while the checkpoint is unchanged (a .onnx --weights from `visionkit "
                             "export` always runs in ONNX Runtime)")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: also run on the mirror image, boxes mapped back")
    parser.add_argument("--scales", type=float, nargs="+", default=None, metavar="S",
                        help="multi-scale test: also run at these image size factors (e.g. 0.8 1 1.2)")
    parser.add_argument("--fusion", choices=["wbf", "nms"], default="wbf",
                        help="how an ensemble or TTA combines boxes: weighted boxes fusion (default) "
                             "or per-class NMS")
    parser.add_argument("--fusion-iou", type=probability, default=0.55,
                        help="IoU joining boxes (wbf) or suppressing them (nms); default 0.55")
    parser.add_argument("--no-images", action="store_true", help="do not write annotated images")
    parser.add_argument("--resume", action="store_true",
                        help="continue a killed run in --out, skipping the images it finished")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="leave unreadable images out (listed in skipped_files.txt) instead of "
                             "stopping")
    return parser


def predict_main(argv: list[str]) -> int:
    """Run `visionkit detect predict` and say where the results went."""
    args = predict_parser().parse_args(argv)  # before the heavy imports: --help is instant
    weights, images = split_checkpoints(args.weights)
    from visionkit.inference.detection import detect_to_dir

    if args.backend == "onnxruntime":
        from visionkit.inference.onnx_backend import as_onnx_files

        weights = as_onnx_files(weights, args.out)
        print(f"running {', '.join(weights)} in ONNX Runtime")

    summary = detect_to_dir(weights, [*images, *args.sources, *args.source], args.out, model=args.model,
                            gt=args.gt, image_root=args.image_root, score_thresh=args.score_thresh,
                            draw_thresh=args.draw_thresh, classes=args.classes, max_det=args.max_det,
                            batch_size=args.batch_size, num_workers=args.num_workers,
                            device=args.device, precision=args.precision,
                            save_images=not args.no_images, resume=args.resume,
                            skip_invalid=args.skip_invalid, tta=args.tta, scales=args.scales,
                            fusion=args.fusion, fusion_iou=args.fusion_iou)
    resumed = f", {summary.resumed} done before (--resume)" if summary.resumed else ""
    skipped = f", {len(summary.skipped)} unreadable left out" if summary.skipped else ""
    written = ["results.json", "predictions.csv", "predictions.jsonl"]
    written += ["images/"] if summary.annotated_images else []
    written += [p.name for p in summary.files if p.suffix == ".mp4"]
    print(f"{summary.images} images, {summary.detections} detections{resumed}{skipped}; results in "
          f"{summary.out_dir}/ ({', '.join(written)})")
    return 0


def proposals_parser() -> argparse.ArgumentParser:
    """Options of `visionkit detect proposals`."""
    parser = argparse.ArgumentParser(
        prog="visionkit detect proposals",
        description="Compute selective-search proposals for every image of a COCO file into the "
                    "proposal cache (what `detect fit` of an rcnn_*/fast_rcnn_* model reads) and "
                    "report their recall at IoU 0.5/0.7 vs proposals per image.")
    parser.add_argument("--json", required=True, help="COCO instances file")
    parser.add_argument("--image-root", default=None,
                        help="folder the file names are relative to (default: the JSON's folder)")
    parser.add_argument("--cache", default="runs/proposals",
                        help="cache root (the data module's proposal_cache; default runs/proposals)")
    parser.add_argument("--out", default=None,
                        help="report folder (default runs/detect/proposals/<json stem>)")
    parser.add_argument("--mode", choices=["recall", "fast", "quality"], default="recall",
                        help="selective search mode (default recall: SelectiveSearch's default)")
    parser.add_argument("--max-proposals", type=int, default=2000)
    parser.add_argument("--max-side", type=int, default=500,
                        help="search at most this image side (0: full size); boxes are mapped back")
    parser.add_argument("--num-workers", type=int, default=2, help="processes computing proposals")
    return parser


def proposals_main(argv: list[str]) -> int:
    """Run `visionkit detect proposals` and print the recall table."""
    args = proposals_parser().parse_args(argv)
    from visionkit.inference.proposals import proposals_to_dir

    settings = {"mode": args.mode, "max_proposals": args.max_proposals, "max_side": args.max_side or None}
    out = args.out or f"runs/detect/proposals/{Path(args.json).stem}"
    run = proposals_to_dir(args.json, args.image_root, args.cache, out, settings, args.num_workers)
    report = run.recall
    print(f"{report.num_images} images, {report.num_boxes} boxes, {report.mean_proposals:.0f} proposals "
          f"per image ({int(run.counts['computed'])} computed, {int(run.counts['cached_before'])} cached)")
    print("proposals " + " ".join(f"{n:>6}" for n in report.counts))
    for iou, values in report.recall.items():
        print(f"R@{iou:<6}  " + " ".join(f"{v:6.3f}" for v in values))
    print(f"cache {run.cache_folder}/; report {run.out_dir}/ (recall.json, recall.png)")
    return 0


def main(argv: list[str]) -> int:
    """Dispatch fit/validate/test to the detection LightningCLI, predict and proposals to their own."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] == "predict":
        return predict_main(argv[1:])
    if argv[0] == "proposals":
        return proposals_main(argv[1:])
    if argv[0] not in ("fit", "validate", "test"):
        print(f"visionkit detect: unknown subcommand {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    if wants_help(argv):  # from the help cache: milliseconds instead of seconds of imports
        return print_help(["detect", *argv], lambda: _run(argv))
    _run(with_cuda_amp(argv))
    return 0


def _run(argv: list[str]) -> None:
    from visionkit.tasks.cli import run_cli
    from visionkit.tasks.detection import DetectionTask
    from visionkit.tasks.detection_datamodule import DetectionDataModule

    run_cli(DetectionTask, DetectionDataModule, argv, prog="visionkit detect")
