"""FastRCNN on a tiny backbone: training losses (some by hand), learning, eval boxes in image pixels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from visionkit.detection.fast_rcnn import FastRCNN

from ..ops._helpers import assert_close


class StrideSixteen(nn.Module):
    """A 16x16 stride-16 conv: one feature map "0" at 1/16 of the input, ``out_channels`` 4."""

    out_channels = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 16, stride=16)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"0": torch.relu(self.conv(x))}


def _model(**options) -> FastRCNN:
    """Fast R-CNN with 3 classes (num_classes 4); images resized so the short side is 50."""
    torch.manual_seed(0)
    options = {"min_size": 50, "max_size": 1000, "roi_output_size": 2, "representation_size": 16,
               **options}
    return FastRCNN(StrideSixteen(), 4, **options)


def _zero_predictor(model: FastRCNN, class_bias: list[float] | None = None) -> FastRCNN:
    predictor = model.roi_heads.box_predictor
    with torch.no_grad():
        for layer in (predictor.cls_score, predictor.bbox_pred):
            layer.weight.zero_()
            layer.bias.zero_()
        if class_bias is not None:
            predictor.cls_score.bias.copy_(torch.tensor(class_bias))
    return model


# One 100 x 120 image (h x w), resized by 0.5 to 50 x 60 (padded to 64 x 64: a 4 x 4 map).
IMAGE_SIZE = (100, 120)
TARGET = {"boxes": torch.tensor([[0.0, 0.0, 20.0, 20.0], [40.0, 40.0, 80.0, 80.0]]),  # areas 400, 1600
          "labels": torch.tensor([3, 1])}
PROPOSALS = torch.tensor([
    [0.0, 0.0, 20.0, 16.0],  # IoU gt 0 = 320/400 = 0.8 -> class 3
    [40.0, 40.0, 80.0, 60.0],  # IoU gt 1 = 800/1600 = 0.5 -> class 1
    [0.0, 0.0, 20.0, 8.0],  # IoU gt 0 = 0.4 -> background (in [0.1, 0.5))
    [0.0, 0.0, 20.0, 1.0],  # IoU gt 0 = 0.05 < bg_iou_low 0.1 -> not sampled
    [90.0, 90.0, 110.0, 100.0],  # IoU 0 -> not sampled
])


def _image(seed: int = 0, size: tuple[int, int] = IMAGE_SIZE) -> torch.Tensor:
    return torch.rand(3, *size, generator=torch.Generator().manual_seed(seed))


def test_training_returns_exactly_the_two_finite_losses():
    losses = _model().train()([_image()], [TARGET], [PROPOSALS])
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert losses["loss_box_reg"] > 0  # two positive proposals off their gt boxes


def test_training_losses_by_hand_with_a_zero_predictor():
    losses = _zero_predictor(_model()).train()([_image()], [TARGET], [PROPOSALS])
    # Zero logits over 4 classes: cross-entropy log 4 = 1.386294 for each sampled RoI.
    assert_close(losses["loss_classifier"], torch.tensor(1.386294))
    # Sampled (batch 64 >> 5): proposals 0, 1, 2 and the two gt boxes. Deltas do not change with
    # the 0.5 resize, weights (10, 10, 5, 5):
    #   [0,0,20,16] -> gt 0: dy = 10 * (10 - 8) / 16 = 1.25, dh = 5 log(20/16) = 1.115718
    #   [40,40,80,60] -> gt 1: dy = 10 * (60 - 50) / 20 = 5, dh = 5 log 2 = 3.465736
    # Smooth L1 (beta 1/9) vs zero deltas: each minus 1/18, summed 10.609232, over 5 RoIs.
    assert_close(losses["loss_box_reg"], torch.tensor(2.121846))


def test_training_needs_targets():
    with pytest.raises(ValueError, match="targets"):
        _model().train()([_image()], None, [PROPOSALS])


def test_loss_falls_over_sgd_steps_on_one_image():
    model = _model().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    image = _image()
    totals = []
    for _ in range(20):
        loss = sum(model([image], [TARGET], [PROPOSALS]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert totals[-1] < 0.75 * totals[0], totals  # e.g. 3.78 -> 2.44


@pytest.mark.parametrize("roi_pool", ["pool", "align"])
def test_eval_returns_given_proposals_in_original_pixels(roi_pool):
    # Zero deltas and class bias [0, 0, 3, 0]: softmax e^3 / (e^3 + 3) = 0.870050 for class 2,
    # 1 / (e^3 + 3) = 0.043317 < 0.05 for the others -> one class-2 detection per proposal.
    model = _zero_predictor(_model(roi_pool=roi_pool), [0.0, 0.0, 3.0, 0.0]).eval()
    # Image 0 (100 x 120, scale 0.5): [100, 80, 130, 110] ends past the image -> clipped in the
    # resized image and mapped back: [100, 80, 120, 100]. Image 1 (60 x 60, scale 50/60).
    given = [torch.tensor([[10.0, 20.0, 50.0, 70.0], [100.0, 80.0, 130.0, 110.0]]),
             torch.tensor([[6.0, 12.0, 30.0, 48.0]])]
    with torch.no_grad():
        out = model([_image(), _image(1, (60, 60))], proposals=given)
    assert len(out) == 2
    boxes = out[0]["boxes"][out[0]["boxes"][:, 0].argsort()]  # equal scores: order by x1
    assert_close(boxes, torch.tensor([[10.0, 20.0, 50.0, 70.0], [100.0, 80.0, 120.0, 100.0]]), atol=1e-4)
    assert_close(out[1]["boxes"], given[1], atol=1e-4)
    for det, count in zip(out, (2, 1), strict=True):
        assert torch.equal(det["labels"], torch.full((count,), 2))
        assert_close(det["scores"], torch.full((count,), 0.870050))


def test_eval_keeps_only_max_proposals_test():
    model = _zero_predictor(_model(max_proposals_test=1), [0.0, 3.0, 0.0, 0.0]).eval()
    given = torch.tensor([[10.0, 20.0, 50.0, 70.0], [60.0, 10.0, 100.0, 40.0]])
    with torch.no_grad():
        out = model([_image()], proposals=[given])[0]
    # Only the first proposal is looked at: one class-1 detection on it.
    assert_close(out["boxes"], given[:1], atol=1e-4)
    assert torch.equal(out["labels"], torch.tensor([1]))
