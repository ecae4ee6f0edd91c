"""Non-finite losses: skipped and reported with the batch's files; N in a row stop after a checkpoint."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from visionkit.data.synthetic import make_shapes_classification
from visionkit.errors import TrainingError
from visionkit.tasks.classification import ClassificationTask
from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule
from visionkit.tasks.nonfinite import CHECKPOINT_NAME
from visionkit.tasks.trainer import build_trainer


class PoisonedSteps(L.Callback):
    """Make the model's output NaN on the given global steps; keep the weights seen before each."""

    def __init__(self, steps: set[int]) -> None:
        self.steps, self.before, self.after = steps, {}, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = trainer.global_step
        self.before[batch_idx] = {k: v.clone() for k, v in pl_module.state_dict().items()}
        pl_module.poisoned = step in self.steps and batch_idx not in self.after
        self.after[batch_idx] = pl_module.poisoned


class Task(ClassificationTask):
    poisoned = False

    def forward(self, images):
        logits = super().forward(images)
        return logits * float("nan") if self.poisoned else logits


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_shapes_classification(tmp_path_factory.mktemp("shapes"), n_train=8, n_val=4, size=32)


def fit(data, out, poison, limit=3, epochs=1):
    L.seed_everything(0, verbose=False)
    dm = ImageFolderDataModule(str(data), image_size=32, batch_size=4, num_workers=0)
    task = Task("resnet18", dm.num_classes, class_names=dm.classes, image_size=32, optimizer="sgd",
                lr=0.01, max_nonfinite_steps=limit)
    trainer = build_trainer(str(out), max_epochs=epochs, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0, callbacks=[poison])
    trainer.fit(task, dm)
    return task


def test_a_non_finite_step_is_skipped_reported_and_training_goes_on(data, tmp_path):
    with pytest.warns(UserWarning, match=r"step 1: loss is nan.*step skipped.*\.png") as caught:
        task = fit(data, tmp_path, poison := PoisonedSteps({1}))
    assert len([w for w in caught if "step skipped" in str(w.message)]) == 1
    for key, value in poison.before[1].items():  # the poisoned batch changed nothing
        assert torch.equal(poison.before[2][key], value), key
    assert all(torch.isfinite(v).all() for v in task.state_dict().values() if v.is_floating_point())


def test_n_non_finite_steps_in_a_row_stop_with_a_checkpoint_of_the_last_good_weights(data, tmp_path):
    with pytest.warns(UserWarning, match="step skipped"), \
            pytest.raises(TrainingError, match="3 steps in a row had a non-finite loss") as err:
        fit(data, tmp_path, poison := PoisonedSteps({2, 3, 4}), epochs=2)
    path = next(tmp_path.rglob(CHECKPOINT_NAME))
    assert str(path) in str(err.value)
    saved = torch.load(path, weights_only=True)
    assert "visionkit" in saved and saved["epoch"] == 0
    for key, value in poison.before[2].items():  # the weights before the first bad step
        assert torch.equal(saved["state_dict"][key], value), key
