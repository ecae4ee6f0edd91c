"""An ensemble of seeds against its members, and flip TTA (`visionkit benchmark ensemble`).

Trains ``--seeds`` runs of one classification config (default: the README's from-scratch
ResNet-18 on the ants/bees photos), differing only in their seed, then scores the val split
with each member's best checkpoint alone and with flip TTA, and with the members combined by
soft vote and by majority vote (with and without TTA). Reported: each member's accuracy, their
mean, each ensemble's accuracy and whether the soft-vote ensemble beats the members' mean.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "configs" / "classify" / "resnet18_finetune.yaml"
TRAINER_KEYS = ("deterministic", "log_every_n_steps", "gradient_clip_val", "precision",
                "accumulate_grad_batches")


def config_sections(path: str | Path) -> tuple[dict, dict, dict, int, str | None]:
    """(model, data, trainer arguments, epochs, data root) of a `classify fit` YAML config."""
    config = yaml.safe_load(Path(path).read_text())
    trainer = config.get("trainer") or {}
    data = dict(config.get("data") or {})
    root = data.pop("root", None)
    return (dict(config.get("model") or {}), data,
            {k: v for k, v in trainer.items() if k in TRAINER_KEYS},
            int(trainer.get("max_epochs", 10)), root)


def accuracy(paths: list[str], scores: Any, classes: list[str]) -> float:
    """Share of images whose top class is their class folder's name."""
    top = scores.argmax(1).tolist()
    return sum(Path(p).parent.name == classes[t] for p, t in zip(paths, top, strict=True)) / len(paths)


def run(argv: list[str]) -> dict:
    """Train the members, score them and their ensembles on the val split; the JSON dict."""
    parser = argparse.ArgumentParser(prog="visionkit benchmark ensemble", description=__doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="a `classify fit` config")
    parser.add_argument("--root", default=None, help="image folder (default: the config's data.root)")
    parser.add_argument("--seeds", default="0,1,2", help="one member per seed")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's max_epochs")
    parser.add_argument("--image-size", type=int, default=None, help="default: the config's")
    args = parser.parse_args(argv)

    from visionkit.data.sources import expand_image_sources
    from visionkit.inference.classification import load_classifier
    from visionkit.inference.ensemble import combine, members_probabilities
    from visionkit.tasks.fitting import fit_classifier

    model, data, trainer, epochs, root = config_sections(args.config)
    root = args.root or root
    if root is None:
        parser.error("the config has no data.root: pass --root")
    if not Path(root).is_dir() and (REPO / root).is_dir():  # relative to the repository
        root = str(REPO / root)
    epochs = args.epochs or epochs
    if args.image_size:
        data["image_size"] = args.image_size
    seeds = [int(s) for s in args.seeds.split(",") if s]
    val = [str(p) for p in expand_image_sources([str(Path(root) / "val")])]
    started = time.perf_counter()
    members, results = [], []
    with tempfile.TemporaryDirectory(prefix="vk_ensemble_") as tmp:
        for seed in seeds:
            record, _ = fit_classifier(root, Path(tmp) / f"seed{seed}", epochs=epochs, seed=seed,
                                       data=data, model=model, trainer=trainer)
            members.append(load_classifier(record.best_model_path))
            results.append({"seed": seed, "best_val_acc_logged": round(record.best, 4),
                            "train_seconds": round(record.seconds, 1)})
        classes = members[0].classes
        ensembles = {}
        for tta in (False, True):  # every member's probabilities [M, N, K], read once
            kept, probabilities = members_probabilities(members, val, tta=tta)
            for result, member in zip(results, probabilities, strict=True):
                result["acc_tta" if tta else "acc"] = round(accuracy(kept, member, classes), 4)
            for vote in ("soft", "majority"):
                scores = combine(probabilities, vote)
                ensembles[f"{vote}{'_tta' if tta else ''}"] = round(accuracy(kept, scores, classes), 4)
    mean = sum(r["acc"] for r in results) / len(results)
    return {"benchmark": "ensemble", "config": str(args.config), "root": root, "epochs": epochs,
            "val_images": len(val), "members": results, "member_mean_acc": round(mean, 4),
            "member_mean_acc_tta": round(sum(r["acc_tta"] for r in results) / len(results), 4),
            "ensemble_acc": ensembles, "soft_vote_beats_member_mean": ensembles["soft"] > mean,
            "total_seconds": round(time.perf_counter() - started, 1)}
