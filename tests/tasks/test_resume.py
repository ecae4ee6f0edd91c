"""Fault test: a `classify fit` killed with SIGKILL mid-run resumes from `last` to the same result,
in one process and under 2-process DDP (gloo)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.tasks._processes import DDP, run_command, subprocess_env
from visionkit.data.synthetic import make_shapes_classification
from visionkit.tasks.cli import latest_last_checkpoint
from visionkit.tasks.ema import TRAINED_WEIGHTS

EPOCHS = 3
TIMEOUT_S = 300  # a run takes 5-30 s; past this it hangs: fail with its output instead


def fit_command(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "visionkit.cli", "classify", "fit",
            "--config", "configs/classify/resnet18_finetune.yaml", "--data.root", str(data),
            "--data.image_size", "32", "--data.batch_size", "8", "--data.num_workers", "1",
            "--model.dropout", "0.2", "--model.mixup_alpha", "0.2", "--trainer.max_epochs", str(EPOCHS),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(out), *extra]


def val_rows(run: Path) -> list[list[float]]:
    """(epoch, val_acc, val_loss) of every validation the run logged."""
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_acc")]
    return [[float(r[k]) for k in ("epoch", "val_acc", "val_loss")] for r in rows]


def weights(run: Path) -> dict[str, torch.Tensor]:
    """The last checkpoint's weights: the state dict (with EMA on, the average) and, with EMA
    on, the trained weights too."""
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    trained = checkpoint.get(TRAINED_WEIGHTS, {})
    return {**checkpoint["state_dict"], **{f"trained:{k}": v for k, v in trained.items()}}


def assert_same_run(resumed: Path, whole: Path) -> None:
    """Every validation the resumed run logged, and its last weights, equal the whole run's."""
    torch.testing.assert_close(torch.tensor(val_rows(resumed)), torch.tensor(val_rows(whole)),
                               atol=1e-6, rtol=0)
    expected, got = weights(whole), weights(resumed)
    for key, value in expected.items():
        assert torch.allclose(got[key].float(), value.float(), atol=1e-6), key


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_shapes_classification(tmp_path_factory.mktemp("shapes"), n_train=24, n_val=8, size=32)


RUNS = {"single": (), "ddp": DDP, "ema": ("--model.ema_decay", "0.9")}


@pytest.mark.parametrize("processes", list(RUNS))
def test_sigkill_mid_run_then_resume_matches_the_uninterrupted_run(data, tmp_path, processes):
    if processes == "ddp" and not (torch.distributed.is_available()
                                   and torch.distributed.is_gloo_available()):
        pytest.skip("this torch build has no gloo backend: CPU DDP cannot run")
    repo = Path(__file__).resolve().parents[2]
    extra = RUNS[processes]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run_command(fit_command(data, whole, *extra), repo, TIMEOUT_S)

    victim = subprocess.Popen(fit_command(data, cut, *extra), cwd=repo, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=subprocess_env(), start_new_session=True)
    first = cut / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not first.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the next epoch
    os.killpg(victim.pid, signal.SIGKILL)  # every rank at once, as a lost machine
    assert victim.wait() == -signal.SIGKILL
    saved_epoch = torch.load(first, weights_only=True)["epoch"]
    assert saved_epoch < EPOCHS - 1, "the run finished before it was killed"
    # atomic writes go through a hidden temporary beside the file (".last.<random>.ckpt")
    assert not list(first.parent.glob(".*")), "a half-written checkpoint was left behind"

    assert latest_last_checkpoint(cut) == first
    run_command(fit_command(data, cut, "--ckpt_path", "last", *extra), repo, TIMEOUT_S)
    # The job goes on in its own folder: one metrics.csv for all epochs, best.ckpt the job's best.
    assert [p.name for p in cut.iterdir()] == ["version_0"]
    assert_same_run(cut / "version_0", whole / "version_0")
    best_whole, best_cut = (torch.load(run / "version_0" / "checkpoints" / "best.ckpt",
                                       weights_only=True) for run in (whole, cut))
    assert best_cut["epoch"] == best_whole["epoch"]
    for key, value in best_whole["state_dict"].items():
        assert torch.allclose(best_cut["state_dict"][key].float(), value.float(), atol=1e-6), key
