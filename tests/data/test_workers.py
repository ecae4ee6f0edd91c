"""Loader workers of a DDP rank start from a fork server (never forked from a process running
gloo's threads), and give the same batches as forked ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist

from visionkit.data.coco_detection import CocoDetection
from visionkit.data.proposal_cache import ProposalCache, precompute_proposals
from visionkit.data.synthetic import make_shapes_classification
from visionkit.data.synthetic_detection import make_shapes_detection
from visionkit.data.workers import worker_start_method
from visionkit.detection.selective_search import SelectiveSearch
from visionkit.tasks.detection_datamodule import DetectionDataModule
from visionkit.tasks.image_folder_datamodule import ImageFolderDataModule

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="no torch.distributed gloo backend")


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group, as a DDP rank has (its threads included)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_a_single_process_keeps_the_platform_default():
    assert not dist.is_initialized()
    assert worker_start_method(2) is None and worker_start_method(0) is None


def test_a_rank_s_workers_start_from_a_fork_server(process_group):
    assert worker_start_method(2) == "forkserver"
    assert worker_start_method(0) is None  # DataLoader refuses a context without workers


def batches(loader) -> list[torch.Tensor]:
    """Every tensor of every batch, in order, flattened to one list."""
    out = []
    for batch in loader:
        items = batch.values() if isinstance(batch, dict) else batch
        for item in items:
            if isinstance(item, torch.Tensor):
                out.append(item)
            elif isinstance(item, (list, tuple)):  # detection: images, then target dicts
                for element in item:
                    out.extend(element.values() if isinstance(element, dict) else [element])
    return [t for t in out if isinstance(t, torch.Tensor)]


def assert_same_batches(first: list[torch.Tensor], second: list[torch.Tensor]) -> None:
    assert len(first) == len(second) > 0
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_batches_from_the_fork_server_equal_the_forked_ones(tmp_path):
    shapes = make_shapes_classification(tmp_path / "cls", n_train=8, n_val=4, size=32)
    scenes = make_shapes_detection(tmp_path / "det", n_train=4, n_val=2, size=48, max_objects=2)

    def loaders() -> list:
        torch.manual_seed(0)  # the epoch seeding starts from torch's seed
        classify = ImageFolderDataModule(str(shapes), image_size=32, batch_size=4, num_workers=1)
        detect = DetectionDataModule(str(scenes / "train.json"), str(scenes / "val.json"), str(scenes),
                                     batch_size=2, num_workers=1)
        for dm in (classify, detect):
            dm.setup("fit")
        return [classify.train_dataloader(), classify.val_dataloader(), detect.train_dataloader()]

    forked = loaders()
    assert {loader.multiprocessing_context for loader in forked} == {None}
    expected = [batches(loader) for loader in forked]
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        served = loaders()
        assert {loader.multiprocessing_context.get_start_method() for loader in served} == {"forkserver"}
        for want, loader in zip(expected, served):
            assert_same_batches(batches(loader), want)
    finally:
        dist.destroy_process_group()


def test_proposals_computed_by_fork_server_workers_equal_this_process_s(tmp_path, process_group):
    root = make_shapes_detection(tmp_path / "d", n_train=3, n_val=1, size=48)
    dataset = CocoDetection(root / "train.json", root)
    generator = SelectiveSearch(mode="fast", max_proposals=50)
    here, served = ProposalCache(tmp_path / "here", generator), ProposalCache(tmp_path / "served", generator)
    assert precompute_proposals(dataset, here, num_workers=0, progress=False)["computed"] == 3
    assert precompute_proposals(dataset, served, num_workers=1, progress=False)["computed"] == 3
    for record in dataset.records:
        np.testing.assert_array_equal(served.load(record), here.load(record))
