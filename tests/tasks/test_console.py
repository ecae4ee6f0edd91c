"""What a run prints: our lines, without Lightning's adverts and notices about its internals."""

import logging

from lightning.pytorch.utilities import rank_zero_info

from visionkit.tasks.trainer import quiet_lightning


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_adverts_and_internal_notices_are_dropped_ours_kept():
    quiet_lightning()
    quiet_lightning()  # idempotent: one filter
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert len(logger.filters) == 1
    collect = Collect()
    logger.addHandler(collect)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        rank_zero_info("💡 Tip: For seamless cloud uploads and versioning, try installing litmodels")
        rank_zero_info("The following callbacks returned in `LightningModule.configure_callbacks` "
                       "will override existing callbacks passed to Trainer: ModelCheckpoint")
        rank_zero_info("`Trainer.fit` stopped: `max_epochs=1` reached.")
        rank_zero_info("`Trainer.fit` stopped: `max_steps=10` reached.")
        rank_zero_info("--ckpt_path last: runs/x/version_0/checkpoints/last.ckpt")
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    assert collect.lines == ["--ckpt_path last: runs/x/version_0/checkpoints/last.ckpt"]
