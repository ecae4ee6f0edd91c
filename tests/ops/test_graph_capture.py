"""The box ops and RoI pooling run whole under ``torch.compile(fullgraph=True)`` and
``torch.export`` with eager's values (our CPU RoIAlign kernel steps aside while capturing).
The ``aot_eager`` backend captures and runs the graph without a C++ toolchain."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

import visionkit.ops as ops
from tests.ops._helpers import assert_close, random_boxes

_A, _B = random_boxes(9, 0, degenerate=0.3), random_boxes(7, 1)
_FEATURES = torch.randn(2, 8, 24, 32, generator=torch.Generator().manual_seed(0))
_BOXES = [random_boxes(5, 5, size=120.0), random_boxes(3, 6, size=120.0)]
_ROIS = ops.boxes_to_rois(_BOXES)

CASES: dict[str, tuple[Callable[..., Tensor], tuple[Tensor, ...]]] = {
    "box_iou": (ops.box_iou, (_A, _B)),
    "generalized_box_iou": (ops.generalized_box_iou, (_A, _B)),
    "box_area": (ops.box_area, (_A,)),
    "box_convert": (lambda x: ops.box_convert(x, "xywh", "cxcywh"), (_A,)),
    "clip_boxes_to_image": (lambda x: ops.clip_boxes_to_image(x, (50, 80)), (_A,)),
    "remove_small_boxes": (lambda x: ops.remove_small_boxes(x, 3.0), (_A,)),
    "nms": (lambda x, s: ops.nms(x, s, 0.5), (_A, torch.linspace(1, 0, 9))),
    "roi_align": (lambda f, r: ops.roi_align(f, r, (3, 4), 0.25, 2, True), (_FEATURES, _ROIS)),
    "roi_align_list": (lambda f, b1, b2: ops.roi_align(f, [b1, b2], 3, 0.25, -1), (_FEATURES, *_BOXES)),
    "roi_pool": (lambda f, r: ops.roi_pool(f, r, 3, 0.25), (_FEATURES, _ROIS)),
}


class _Call(nn.Module):
    def __init__(self, fn: Callable[..., Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.fn(*inputs)


@pytest.mark.parametrize("name", list(CASES))
def test_compile_fullgraph_gives_eager_values(name: str) -> None:
    fn, inputs = CASES[name]
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    assert_close(compiled(*inputs), fn(*inputs))


@pytest.mark.parametrize("name", list(CASES))
def test_export_gives_eager_values(name: str) -> None:
    fn, inputs = CASES[name]
    program = torch.export.export(_Call(fn), inputs)
    assert_close(program.module()(*inputs), fn(*inputs))
