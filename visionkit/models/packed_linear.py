"""`PackedLinear`: an inference ``nn.Linear`` that runs through oneDNN with its weight packed once."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from visionkit.ops.packed_linear import pack_linear_weight, packed_linear, packed_linear_applies


class PackedLinear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict); on the CPU without gradients it uses
    `visionkit.ops.packed_linear`, repacking when the weight changes (loading, ``.to``, in-place edits)."""

    _packed: tuple[int, int, Tensor] | None = None  # (data pointer, version, packed weight)

    def forward(self, input: Tensor) -> Tensor:
        """``input @ weight.T + bias``."""
        if not packed_linear_applies(input, self.weight):
            return F.linear(input, self.weight, self.bias)
        # inference-mode tensors have no version counter: their pointer alone keys the cache
        key = (self.weight.data_ptr(), -1 if self.weight.is_inference() else self.weight._version)
        if self._packed is None or self._packed[:2] != key:
            self._packed = (*key, pack_linear_weight(self.weight))
        return packed_linear(input, self._packed[2], self.bias)

    def __getstate__(self) -> dict:
        """State for pickling and ``copy.deepcopy``, less the packed weight (opaque, rebuilt on use)."""
        state = super().__getstate__()
        state.pop("_packed", None)
        return state


def use_packed_linear(model: nn.Module) -> int:
    """Swap every plain ``nn.Linear`` of ``model`` for a `PackedLinear` sharing its parameters, in
    place; how many were swapped."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                fast = PackedLinear(child.in_features, child.out_features, bias=False, device="meta")
                fast.weight, fast.bias = child.weight, child.bias
                fast.train(child.training)
                setattr(module, name, fast)
                swapped += 1
    return swapped
