"""Every public function, module and class of `visionkit.ops` compiles with ``torch.jit.script``,
and the compiled version gives eager's values (torchvision's ops script; users script models that
call ours). Scripted RoIAlign runs torchvision's kernel where eager may run ours on the CPU, so
those compare to float rounding; everything else is equal."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from torch import Tensor

import visionkit.ops as ops
from tests.ops._helpers import assert_close, random_boxes
from visionkit.ops import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    MultiScaleRoIAlign,
)


def script(obj):
    with warnings.catch_warnings():  # torch >= 2.10 deprecates scripting; it is what is tested
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(obj)


def assert_equal(actual, expected) -> None:
    if isinstance(expected, Tensor):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)
    else:
        assert type(actual) in (list, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_equal(a, e)


@pytest.mark.parametrize("name", ops.__all__)
def test_every_public_name_scripts(name: str) -> None:
    obj = getattr(ops, name)
    if inspect.isclass(obj) and issubclass(obj, torch.nn.Module):
        return  # instances are scripted below, with the values they give
    script(obj)


def _box_sets() -> list[tuple[Tensor, Tensor]]:
    """Pairs of box sets: random, with degenerate boxes, empty; float32 and float64."""
    a, b = random_boxes(9, 0, degenerate=0.3), random_boxes(7, 1)
    empty = torch.zeros(0, 4)
    pairs = [(a, b), (a, empty), (empty, b), (a.double(), b.double()), (a.half(), b.half())]
    return pairs + [(a.round().int(), b.round().int())]


@pytest.mark.parametrize("fn", [ops.box_iou, ops.generalized_box_iou])
def test_pairwise_ops_script_to_eager_values(fn) -> None:
    scripted = script(fn)
    for boxes1, boxes2 in _box_sets():
        assert_equal(scripted(boxes1, boxes2), fn(boxes1, boxes2))


def test_box_geometry_scripts_to_eager_values() -> None:
    area, convert = script(ops.box_area), script(ops.box_convert)
    clip, small = script(ops.clip_boxes_to_image), script(ops.remove_small_boxes)
    for boxes, _ in _box_sets():
        assert_equal(area(boxes), ops.box_area(boxes))
        if boxes.is_floating_point():
            assert_equal(clip(boxes, (50, 80)), ops.clip_boxes_to_image(boxes, (50, 80)))
            assert_equal(small(boxes, 3.0), ops.remove_small_boxes(boxes, 3.0))
            for fmt_in in ("xyxy", "xywh", "cxcywh"):
                for fmt_out in ("xyxy", "xywh", "cxcywh"):
                    assert_equal(convert(boxes, fmt_in, fmt_out), ops.box_convert(boxes, fmt_in, fmt_out))
    with pytest.raises(Exception, match="box formats must be among"):
        convert(boxes, "xyxy", "yxyx")


def test_nms_scripts_to_eager_values() -> None:
    boxes = random_boxes(60, 2, size=60.0)
    scores = torch.rand(60, generator=torch.Generator().manual_seed(0))
    idxs = torch.arange(60) % 3
    for fn in (ops.nms, ops.nms_reference):
        assert_equal(script(fn)(boxes, scores, 0.5), fn(boxes, scores, 0.5))
    batched = script(ops.batched_nms)
    assert_equal(batched(boxes, scores, idxs, 0.5), ops.batched_nms(boxes, scores, idxs, 0.5))
    many = random_boxes(1500, 3, size=400.0)  # above the per-class switch point on the CPU
    many_scores, many_idxs = torch.rand(1500), torch.arange(1500) % 5
    assert_equal(batched(many, many_scores, many_idxs, 0.5),
                 ops.batched_nms(many, many_scores, many_idxs, 0.5))
    none = (boxes[:0], scores[:0], idxs[:0], 0.5)
    assert_equal(batched(*none), ops.batched_nms(*none))
    soft = script(ops.batched_soft_nms)
    for method, kept in (("gaussian", None), ("linear", 10)):
        assert_equal(soft(boxes, scores, idxs, method=method, max_kept=kept),
                     ops.batched_soft_nms(boxes, scores, idxs, method=method, max_kept=kept))
    assert_equal(soft(*none[:3]), ops.batched_soft_nms(*none[:3]))


def _rois() -> tuple[Tensor, list[Tensor]]:
    g = torch.Generator().manual_seed(4)
    features = torch.randn(2, 8, 24, 32, generator=g)
    boxes = [random_boxes(5, 5, size=120.0), random_boxes(3, 6, size=120.0)]
    return features, boxes


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2])
def test_roi_align_scripts_to_eager_values(aligned: bool, sampling_ratio: int) -> None:
    features, boxes = _rois()
    scripted = script(ops.roi_align)
    rois = ops.boxes_to_rois(boxes)
    for given in (boxes, rois):  # a list of per-image boxes and one [K, 5] tensor
        eager = ops.roi_align(features, given, (3, 4), 0.25, sampling_ratio, aligned)
        assert_close(scripted(features, given, (3, 4), 0.25, sampling_ratio, aligned), eager)
        assert_close(scripted(features, given, [3, 4], 0.25, sampling_ratio, aligned), eager)
    assert_close(scripted(features, rois, 5, 0.25, sampling_ratio, aligned),
                 ops.roi_align(features, rois, 5, 0.25, sampling_ratio, aligned))


def test_roi_pool_and_rois_script_to_eager_values() -> None:
    features, boxes = _rois()
    assert_equal(script(ops.boxes_to_rois)(boxes), ops.boxes_to_rois(boxes))
    assert_equal(script(ops.roi_pool)(features, boxes, 3, 0.25), ops.roi_pool(features, boxes, 3, 0.25))
    rois = ops.boxes_to_rois(boxes)
    assert_equal(script(ops.fpn_levels)(rois[:, 1:], 2, 5), ops.fpn_levels(rois[:, 1:], 2, 5))
    assert script(ops.infer_scale)(features, [96, 128]) == ops.infer_scale(features, [96, 128]) == 0.25
    with pytest.raises(Exception, match=r"RoIs as one tensor must be \[K, 5\]"):
        script(ops.roi_pool)(features, rois[:, 1:], 3, 0.25)


def test_multiscale_roi_align_scripts_to_eager_values() -> None:
    g = torch.Generator().manual_seed(7)
    maps = {"0": torch.randn(2, 4, 32, 40, generator=g), "1": torch.randn(2, 4, 16, 20, generator=g),
            "pool": torch.randn(2, 4, 8, 10, generator=g)}
    boxes = [random_boxes(6, 8, size=120.0) * torch.tensor([1.0, 1.0, 1.5, 1.5]), random_boxes(2, 9)]
    shapes = [(128, 160), (120, 150)]
    for aligned in (False, True):
        pooler = MultiScaleRoIAlign(["0", "1"], 5, 2, aligned=aligned)
        assert_close(script(pooler)(maps, boxes, shapes), pooler(maps, boxes, shapes))
    single = MultiScaleRoIAlign(["1"], (2, 3), -1)
    assert_close(script(single)(maps, boxes, shapes), single(maps, boxes, shapes))


def test_anchor_generator_scripts_to_eager_values() -> None:
    generator = AnchorGenerator(((16, 32), (64,)), ((0.5, 1.0, 2.0), (1.0,)))
    scripted = script(generator)
    images = torch.zeros(2, 3, 64, 96)
    maps = [torch.zeros(2, 4, 16, 24), torch.zeros(2, 4, 8, 12)]
    eager = generator(images, maps)
    assert_equal(scripted(images, maps), eager)
    assert_equal(scripted(list(images.shape), {"0": maps[0], "1": maps[1]}), eager)
    sizes, ratios = [32.0, 64.0], [0.5, 2.0]
    assert_equal(script(ops.cell_anchors)(sizes, ratios), ops.cell_anchors(sizes, ratios))


def test_losses_script_to_eager_values() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    smooth = script(ops.smooth_l1_loss)
    for reduction in ("none", "mean", "sum"):
        for beta in (0.0, 1 / 9, 1.0):
            assert_equal(smooth(a, b, beta, reduction), ops.smooth_l1_loss(a, b, beta, reduction))
    with pytest.raises(Exception, match="reduction must be"):
        smooth(a, b, 1.0, "max")
    logits, deltas = torch.randn(6, 3, generator=g), torch.randn(6, 12, generator=g)
    labels = [torch.tensor([0, 1, 2]), torch.tensor([2, 0, 0])]
    targets = [torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)]
    assert_equal(script(ops.fastrcnn_loss)(logits, deltas, labels, targets),
                 ops.fastrcnn_loss(logits, deltas, labels, targets))
    empty = [torch.zeros(0, dtype=torch.int64)]
    assert_equal(script(ops.fastrcnn_loss)(logits[:0], deltas[:0], empty, [torch.zeros(0, 4)]),
                 ops.fastrcnn_loss(logits[:0], deltas[:0], empty, [torch.zeros(0, 4)]))
    assert_equal(script(ops.zero_loss)([logits, deltas]), ops.zero_loss([logits, deltas]))


def _use_classes(quality: Tensor, boxes: list[Tensor], deltas: Tensor
                 ) -> tuple[Tensor, Tensor, list[Tensor], Tensor, list[Tensor]]:
    """Matcher, BoxCoder and the sampler called from scripted code (as in a scripted RPN)."""
    rpn = Matcher(0.7, 0.3, True, None)
    fast = Matcher(0.5, 0.5, False, 0.1)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0), 4.135166556742356)
    sampler = BalancedPositiveNegativeSampler(4, 0.5, None)
    matched = rpn(quality)
    torch.manual_seed(0)
    positives = sampler([matched + 1])[0]
    return (matched, fast(quality), coder.encode(boxes, [b + 1.0 for b in boxes]),
            coder.decode(deltas, boxes), positives)


def test_classes_script_and_give_eager_values() -> None:
    quality = torch.rand(3, 20, generator=torch.Generator().manual_seed(5))
    boxes = [random_boxes(4, 1), random_boxes(3, 2)]
    deltas = torch.randn(7, 8, generator=torch.Generator().manual_seed(6))
    matched, fast, encoded, decoded, positives = script(_use_classes)(quality, boxes, deltas)
    eager_matched = Matcher.for_rpn()(quality)
    assert_equal(matched, eager_matched)
    assert_equal(fast, Matcher.for_roi_heads(0.1)(quality))
    coder = BoxCoder()
    assert_equal(encoded, list(coder.encode(boxes, [b + 1.0 for b in boxes])))
    assert_equal(decoded, coder.decode(deltas, boxes))
    torch.manual_seed(0)
    assert_equal(positives, BalancedPositiveNegativeSampler(4, 0.5)([eager_matched + 1])[0])
    for cls in (Matcher, BoxCoder, BalancedPositiveNegativeSampler):
        assert script(cls) is cls  # scripting a class registers it and returns the class
