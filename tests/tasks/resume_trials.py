"""Kill-and-resume trials: a `classify fit` is killed with SIGKILL at several points (seeded random
times over the run, while a checkpoint is being written, and in the middle of a validation
after the first epoch), resumed with `--ckpt_path last`,
and compared with the uninterrupted run (validation metrics and final weights), in one process
and under 2-process gloo DDP. The test suite runs one kill per mode (`test_resume.py`); this runs
more and prints how many resumed exactly:

    python -m tests.tasks.resume_trials --trials 5 --out /tmp/resume_trials
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from tests.tasks._processes import run_command, subprocess_env
from tests.tasks.test_resume import RUNS, TIMEOUT_S, assert_same_run, fit_command
from visionkit.data.synthetic import make_shapes_classification

REPO = Path(__file__).resolve().parents[2]


def run(data: Path, out: Path, *extra: str) -> float:
    start = time.monotonic()
    run_command(fit_command(data, out, *extra), REPO, timeout_s=TIMEOUT_S)
    return time.monotonic() - start


def kill_run(data: Path, out: Path, extra: tuple[str, ...], when: float | str) -> str:
    """Start a fit and SIGKILL it after ``when`` seconds, while a checkpoint is written
    (``"writing"``) or in the middle of a validation after the first epoch (``"validation"``:
    the run gets a `ValidationMarker`, which holds that validation's first batch)."""
    marker = out / "validating"
    if when == "validation":
        extra = (*extra, "--trainer.callbacks+=tests.tasks.markers.ValidationMarker",
                 "--trainer.callbacks.init_args.path", str(marker))
    victim = subprocess.Popen(fit_command(data, out, *extra), cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=subprocess_env(), start_new_session=True)
    start = time.monotonic()
    while victim.poll() is None:
        if isinstance(when, float) and time.monotonic() - start >= when:
            break
        if when == "writing" and list(out.glob("version_*/checkpoints/.*")):  # atomic temporary
            break
        if when == "validation" and marker.exists():
            time.sleep(0.2)  # inside the held validation batch
            break
        time.sleep(0.001)
    if victim.poll() is not None:
        return "finished before the kill"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    return f"killed at {time.monotonic() - start:.2f} s"


def same_result(whole: Path, cut: Path) -> bool:
    """Whether the resumed job (the newest run folder under ``cut``: a kill before the first
    checkpoint leaves an abandoned version_0) ended as the whole run did."""
    resumed = max(cut.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    try:
        assert_same_run(resumed, whole)
    except AssertionError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="random kill times per mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", nargs="+", default=["single", "ddp"], choices=list(RUNS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = make_shapes_classification(args.out / "data", n_train=24, n_val=8, size=32)
    report = {}
    for mode in args.modes:
        extra = RUNS[mode]
        whole = args.out / mode / "whole"
        duration = run(data, whole, *extra)
        rng = random.Random(args.seed)
        points: list[float | str] = [rng.uniform(0.2, 1.0) * duration for _ in range(args.trials)]
        trials = []
        for i, when in enumerate([*points, "writing", "validation"]):
            cut = args.out / mode / f"cut{i}"
            how = kill_run(data, cut, extra, when)
            run(data, cut, "--ckpt_path", "last", *extra)
            exact = same_result(whole / "version_0", cut)
            point = (f"after {when:.1f} s" if isinstance(when, float) else
                     {"writing": "while writing a checkpoint",
                      "validation": "in the middle of a validation"}[when])
            trials.append({"kill": point, "outcome": how, "exact": exact})
            print(f"{mode}: kill {point}: {how}; resumed exactly: {exact}", flush=True)
        killed = [t for t in trials if t["outcome"].startswith("killed")]
        report[mode] = {"run_seconds": round(duration, 1), "trials": trials,
                        "exact": f"{sum(t['exact'] for t in killed)}/{len(killed)}"}
        print(f"{mode}: {report[mode]['exact']} killed runs resumed exactly", flush=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
