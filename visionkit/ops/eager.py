"""Whether code runs eagerly: our custom CPU kernels step aside while a graph is being captured."""

from __future__ import annotations

import torch
import torch.fx


def capturing_graph(*inputs: object) -> bool:
    """True while tracing, scripting, exporting to ONNX or compiling, or when ``inputs`` hold
    torch.fx proxies (symbolic tracing)."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling() or any(isinstance(x, torch.fx.Proxy) for x in inputs))
