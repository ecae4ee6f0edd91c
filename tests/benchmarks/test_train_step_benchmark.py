"""The train-step benchmark at a tiny size: both loops timed, ratio reported, registered."""

import pytest

from visionkit.benchmarks import BENCHMARKS, train_step


def test_small_run_times_both_loops() -> None:
    out = train_step.run(["--size", "32", "--batch-size", "4", "--steps", "2", "--rounds", "1"])
    per_step = out["seconds_per_step"]
    assert per_step["plain"] > 0 and per_step["lightning"] > 0
    # the ratio is of the unrounded medians; the reported seconds are rounded to 0.1 ms
    assert out["lightning_over_plain"] == pytest.approx(per_step["lightning"] / per_step["plain"], rel=0.05)
    assert BENCHMARKS["train-step"] == "visionkit.benchmarks.train_step"
