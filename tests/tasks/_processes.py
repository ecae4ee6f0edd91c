"""What the tests that start `visionkit` in subprocesses share (DDP runs, kill-and-resume)."""

import os

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
