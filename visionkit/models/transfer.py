"""Transfer-learning mechanics on layer groups: freezing, and per-group parameter groups.

Layer groups are lists of modules ordered shallow → deep (see `ImageClassifier.layer_groups`).
A frozen group has `requires_grad=False` everywhere and is kept in eval mode (BatchNorm uses
its running statistics, dropout is off).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch import nn

Groups = Sequence[Sequence[nn.Module]]
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
               nn.modules.instancenorm._InstanceNorm)


def set_group_trainable(groups: Groups, trainable: Sequence[bool]) -> None:
    """Freeze or unfreeze each group: `trainable[i]` applies to `groups[i]`."""
    for group, flag in zip(groups, trainable, strict=True):
        for module in group:
            module.requires_grad_(flag)
            module.train(flag and module.training)


def trainable_deepest(groups: Groups, n: int) -> list[bool]:
    """Flags leaving only the `n` deepest groups trainable."""
    return [i >= len(groups) - n for i in range(len(groups))]


def frozen_modules(groups: Groups) -> Iterator[nn.Module]:
    """Modules of groups whose parameters are all frozen."""
    for group in groups:
        params = [p for m in group for p in m.parameters()]
        if params and not any(p.requires_grad for p in params):
            yield from group


def modules_outside(model: nn.Module, inner: nn.Module) -> list[nn.Module]:
    """The largest submodules of ``model`` that do not contain ``inner``: with ``[inner]`` they
    hold each of ``model``'s parameters once (a layer group of "everything else"). A parameter
    shared by ``inner`` and another module counts as the other module's in `parameter_groups`."""
    if not any(m is inner for m in model.modules()):
        raise ValueError(f"{type(inner).__name__} is not a submodule of {type(model).__name__}")
    return _outside(model, inner)


def _outside(model: nn.Module, inner: nn.Module) -> list[nn.Module]:
    """`modules_outside` below the check that ``model`` contains ``inner``."""
    if any(True for _ in model.parameters(recurse=False)):
        raise ValueError(f"{type(model).__name__} holds parameters of its own; split it by hand")
    out: list[nn.Module] = []
    for child in model.children():
        if child is inner:
            continue
        if any(m is inner for m in child.modules()):
            out += _outside(child, inner)
        else:
            out.append(child)
    return out


def parameter_groups(groups: Groups, lr: float, weight_decay: float,
                     group_lr_decay: float = 1.0) -> list[dict]:
    """Optimizer parameter groups: LR × decay^(depth from the top), no decay on biases and norms.

    Every parameter is included, frozen ones too (they get no gradient, so optimizers skip
    them), so unfreezing later needs no change to the optimizer or its scheduler.
    """
    out: list[dict] = []
    seen: set[int] = set()
    for depth, group in enumerate(reversed(groups)):
        scale = group_lr_decay ** depth
        decay, no_decay = [], []
        for module in group:
            for sub in module.modules():
                for name, p in sub.named_parameters(recurse=False):
                    if id(p) in seen:
                        continue
                    seen.add(id(p))
                    is_plain = isinstance(sub, NORM_LAYERS) or name == "bias" or p.ndim <= 1
                    (no_decay if is_plain else decay).append(p)
        if decay:
            out.append({"params": decay, "lr": lr * scale, "weight_decay": weight_decay})
        if no_decay:
            out.append({"params": no_decay, "lr": lr * scale, "weight_decay": 0.0})
    return out


def scaled_parameter_groups(model: nn.Module, inner: nn.Module, lr: float, weight_decay: float,
                            inner_lr_scale: float) -> list[dict]:
    """`parameter_groups` of ``model`` with ``inner``'s LR ``lr * inner_lr_scale``, the rest's ``lr``
    (one group when the scale is 1)."""
    if inner_lr_scale == 1.0:
        return parameter_groups([[model]], lr, weight_decay)
    return parameter_groups([[inner], modules_outside(model, inner)], lr, weight_decay,
                            group_lr_decay=inner_lr_scale)
