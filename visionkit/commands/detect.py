"""`visionkit detect fit|validate|test ...`: train and evaluate Faster R-CNN (LightningCLI)."""

from __future__ import annotations

import sys

USAGE = """usage: visionkit detect {fit,validate,test} [options]

  fit       train:   visionkit detect fit --config configs/detect/fasterrcnn_resnet18_fpn.yaml \\
                        --data.train_json F --data.val_json F --data.image_root DIR \\
                        [--model.pretrained null|coco|PATH] [--trainer.max_epochs N] \\
                        [--trainer.default_root_dir OUT]
  validate  COCO mAP of a checkpoint on val_json (same flags, plus --ckpt_path FILE)
  test      same on --data.test_json (default val_json), logged as test_*

Configs: configs/detect/<model name>.yaml. Every constructor argument of the task (--model.*)
and data module (--data.*) is a flag; `visionkit detect fit --help` lists them all. On CUDA,
training runs in mixed precision unless the config or a flag sets trainer.precision."""


def with_cuda_amp(argv: list[str]) -> list[str]:
    """``argv`` with 16-bit mixed precision on CUDA, placed so that any config or flag overrides it."""
    import torch

    if not torch.cuda.is_available() or any(a.startswith("--trainer.precision") for a in argv):
        return argv
    return [argv[0], "--trainer.precision", "16-mixed", *argv[1:]]


def main(argv: list[str]) -> int:
    """Dispatch fit/validate/test to the detection LightningCLI."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] not in ("fit", "validate", "test"):
        print(f"visionkit detect: unknown subcommand {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from visionkit.tasks.detection_cli import run_detection_cli

    run_detection_cli(with_cuda_amp(argv), prog="visionkit detect")
    return 0
