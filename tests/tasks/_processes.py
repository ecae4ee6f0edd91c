"""What the tests that start `visionkit` in subprocesses share (DDP runs, kill-and-resume)."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

DDP = ("--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu")
# Variables of an enclosing launcher (torchrun, SLURM) would make Lightning join that job instead.
FOREIGN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK",
               "MASTER_ADDR", "MASTER_PORT", "PL_GLOBAL_SEED")


def subprocess_env() -> dict[str, str]:
    """This process's environment without an enclosing launcher's variables, one thread per rank
    (two ranks on a small CI machine)."""
    env = {k: v for k, v in os.environ.items()
           if k not in FOREIGN_ENV and not k.startswith(("SLURM_", "TORCHELASTIC_"))}
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_command(args: list[str], cwd: Path, timeout_s: float) -> str:
    """Run ``args`` in its own process group and return what it printed; fail the test with that
    output when it exits non-zero or runs past ``timeout_s``. On a timeout the whole group is
    killed (a DDP launcher, the rank it started, loader workers): a process left behind would
    hold the output pipe open, and the test would wait on it forever instead of failing."""
    proc = subprocess.Popen(args, cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{' '.join(args[3:5])} did not finish in {timeout_s} s (a hang?)\n{output[-6000:]}")
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args[3:5])} failed (exit {proc.returncode}):\n{output[-6000:]}")
    return output
