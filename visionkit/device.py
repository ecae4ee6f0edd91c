"""Pick the best available torch device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from visionkit.errors import ConfigError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def auto_device(requested: str | torch.device | None = None) -> torch.device:
    """Return ``requested`` as a device, or CUDA → MPS → CPU, whichever is present first.

    A device this machine does not have, or a name torch does not know, raises `ConfigError`
    with one line saying what there is.
    """
    if requested is None or requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {str(requested)!r}: use auto, cpu, cuda, cuda:N or mps")\
            from None
    have = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if _mps_available() else [])
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {str(requested)!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
    if device.type not in have:
        raise ConfigError(f"device {str(requested)!r}: this machine has no {device.type.upper()} "
                          f"device (available: {', '.join(have)}); use auto or one of those")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {str(requested)!r}: this machine has {torch.cuda.device_count()} "
                          f"CUDA device(s), numbered from 0")
    return device
