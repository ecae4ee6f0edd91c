"""Finding pretrained weights: `weights/`, then TORCH_HOME, then torchvision's download.

`pretrained` is `None` (random init), `"imagenet"` (torchvision's DEFAULT ImageNet weights of
that architecture), or a path to a torchvision `.pth` state dict or a visionkit checkpoint.
A request that cannot be satisfied raises `WeightsError` — never a silent random init.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision

from visionkit.checkpoint_record import has_record, read_record, write_record
from visionkit.errors import WeightsError
from visionkit.fileio import atomic_write_with

REPO_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def weights_dirs() -> list[Path]:
    """Folders searched for weight files, in order: $VISIONKIT_WEIGHTS, ./weights, the repo's."""
    dirs = [Path(d) for d in os.environ.get("VISIONKIT_WEIGHTS", "").split(os.pathsep) if d]
    dirs += [Path.cwd() / "weights", REPO_WEIGHTS]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def offline() -> bool:
    """True when downloads are disabled ($VISIONKIT_OFFLINE=1)."""
    return os.environ.get("VISIONKIT_OFFLINE", "0").lower() in ("1", "true", "yes")


def torchvision_weights_url(arch: str, tag: str = "DEFAULT") -> str:
    """URL of torchvision's weights `tag` (e.g. DEFAULT, IMAGENET1K_V1) for architecture `arch`."""
    try:
        enum = torchvision.models.get_model_weights(arch)
        return enum[tag].url if tag != "DEFAULT" else enum.DEFAULT.url
    except (KeyError, ValueError) as err:
        raise WeightsError(f"torchvision has no {tag} weights for {arch!r}") from err


def fetch_url_weights(url: str, what: str) -> dict[str, torch.Tensor]:
    """Load the file named by `url` from the weights folders, TORCH_HOME, or the network."""
    filename = url.rsplit("/", 1)[-1]
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    for folder in [*weights_dirs(), hub_dir]:
        candidate = folder / filename
        if candidate.is_file():
            return load_state_dict_file(candidate)
    folders = ", ".join(str(d) for d in [*weights_dirs(), hub_dir])
    where = f"put {filename} in one of {folders} (or a folder named in $VISIONKIT_WEIGHTS)"
    if offline():
        raise WeightsError(f"{what} weights are not on disk and downloads are off "
                           f"(VISIONKIT_OFFLINE=1): {where}; the file is {url}")
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=str(hub_dir), progress=True,
                                                  map_location="cpu", weights_only=True)
    except Exception as err:  # network errors come in many types (URLError, OSError, HTTPError)
        raise WeightsError(f"could not download {what} weights from {url} ({err}); "
                           f"offline? {where}") from err


def load_checkpoint_file(path: str | os.PathLike, mmap: bool = False) -> dict:
    """Unpickle a checkpoint or state-dict file with tensors and plain containers only
    (``mmap``: tensors mapped from the file, not read; for a look at the rest of a large file)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({err})") from err
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict (or a checkpoint holding one) from a local file, tensors only."""
    obj = load_checkpoint_file(path)
    if isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors")
    return obj


def state_dict_mismatch(own: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor],
                        optional_suffixes: tuple[str, ...] = ()) -> str | None:
    """What keeps `given` from loading strictly into a model whose state dict is `own`, or None."""
    missing = sorted(k for k in own if k not in given and not k.endswith(optional_suffixes))
    unexpected = sorted(k for k in given if k not in own and not k.endswith(optional_suffixes))
    wrong = sorted(k for k in given if k in own and given[k].shape != own[k].shape)
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if wrong:
        k = wrong[0]
        problems.append(f"shape mismatch at {k!r}: file {tuple(given[k].shape)}, "
                        f"model {tuple(own[k].shape)} ({len(wrong)} keys)")
    return "; ".join(problems) or None


def _few(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f" … (+{len(keys) - n} more)" if len(keys) > n else "")


def slim_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> Path:
    """Inference-only copy of a `fit` checkpoint: its weights (fp16 if ``half``) and visionkit
    metadata, without optimizer state (written atomically)."""
    data = load_checkpoint_file(src)
    if not has_record(data) or not isinstance(data.get("state_dict"), dict):
        raise WeightsError(f"{src}: not a visionkit checkpoint (no state_dict/visionkit entries)")
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in data["state_dict"].items()}
    slim = {"state_dict": state}
    write_record(slim, read_record(data, src))
    return atomic_write_with(dst, lambda tmp: torch.save(slim, tmp))
