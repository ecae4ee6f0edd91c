"""proposal_recall against hand-computed recall and average best overlap."""

import numpy as np

from visionkit.evaluation.proposal_recall import proposal_recall


def test_recall_counts_the_first_n_proposals():
    gt = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([[0, 0, 4, 4]], np.float32),
          np.zeros((0, 4), np.float32)]
    proposals = [
        np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 35]], np.float32),  # IoU 1, 0, 10/15
        np.array([[0, 0, 4, 8]], np.float32),  # IoU 0.5
        np.array([[0, 0, 5, 5]], np.float32),  # an image without objects adds no box
    ]
    report = proposal_recall(proposals, gt, counts=(1, 2, 3, 10), ious=(0.5, 0.7))
    assert report.num_boxes == 3 and report.num_images == 3
    assert report.recall["0.5"] == [2 / 3, 2 / 3, 1.0, 1.0]
    assert report.recall["0.7"] == [1 / 3, 1 / 3, 1 / 3, 1 / 3]
    np.testing.assert_allclose(report.average_best_overlap["3"], (1 + 10 / 15 + 0.5) / 3)
    np.testing.assert_allclose(report.average_best_overlap["1"], (1 + 0 + 0.5) / 3)
    assert report.mean_proposals == 5 / 3


def test_no_proposals_recall_nothing():
    report = proposal_recall([np.zeros((0, 4), np.float32)], [np.array([[0, 0, 4, 4]], np.float32)],
                             counts=(1, 5))
    assert report.recall["0.5"] == [0.0, 0.0]
