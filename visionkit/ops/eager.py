"""Whether code runs eagerly: our custom CPU kernels step aside while a graph is being captured."""

from __future__ import annotations

import torch


def capturing_graph() -> bool:
    """True while tracing, scripting, exporting to ONNX or compiling with torch.compile."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())
