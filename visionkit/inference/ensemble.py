"""Several classifiers as one, and test-time augmentation (TTA) by horizontal flip.

Members must share their class list (checked, in order). Each member sees every image through
its own evaluation preprocessing (members that share it share one pass over the files). Votes:

- ``"soft"`` (the default): the mean of the members' softmax probabilities;
- ``"majority"``: each member votes for its top class; the score of a class is its share of the
  votes, ties broken by the mean probability (so scores still rank every class).

With ``tta``, a member's probabilities are the mean over the image and its mirror image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader

from visionkit.data.image_folder import ImageFolderDataset, collate_classification
from visionkit.errors import ConfigError
from visionkit.inference.classification import LoadedClassifier, load_classifier
from visionkit.progress import progress_bar

VOTES = ("soft", "majority")


def check_members(members: Sequence[LoadedClassifier], sources: Sequence[str]) -> None:
    """Raise `ConfigError` naming the checkpoint whose classes differ from the first's."""
    if not members:
        raise ConfigError("an ensemble needs at least one checkpoint")
    for member, source in zip(members[1:], sources[1:], strict=True):
        if member.classes != members[0].classes:
            raise ConfigError(f"{source}: classes {member.classes} differ from {sources[0]}'s "
                              f"{members[0].classes}; an ensemble's members need the same classes "
                              f"in the same order")


@torch.inference_mode()
def member_probabilities(member: LoadedClassifier, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """Softmax probabilities ``[B, K]`` of a preprocessed batch (mean with its mirror: ``tta``)."""
    probs = member.model(images).softmax(1).float()
    if tta:
        probs = (probs + member.model(images.flip(-1)).softmax(1).float()) / 2
    return probs.cpu()


def combine(probabilities: torch.Tensor, vote: str = "soft") -> torch.Tensor:
    """Scores ``[N, K]`` from the members' probabilities ``[M, N, K]`` (see the module docstring)."""
    if vote not in VOTES:
        raise ConfigError(f"unknown vote {vote!r}; choose one of {', '.join(VOTES)}")
    mean = probabilities.mean(0)  # [N, K]
    if vote == "soft":
        return mean
    num_members, _, num_classes = probabilities.shape
    votes = torch.nn.functional.one_hot(probabilities.argmax(2), num_classes).sum(0)  # [N, K]
    share = votes.float() / num_members
    return share + mean * (0.5 / num_members)  # below one vote: orders ties only


def ensemble_scores(members: Sequence[LoadedClassifier], paths: Sequence[str | os.PathLike], *,
                    vote: str = "soft", tta: bool = False, batch_size: int = 32,
                    num_workers: int = 0, device: torch.device | str = "cpu",
                    skipped: list[tuple[str, str]] | None = None) -> tuple[list[str], torch.Tensor]:
    """(the paths read, their combined scores ``[N, K]``); unreadable images raise, or with a
    ``skipped`` list are appended there and left out."""
    kept, probabilities = members_probabilities(members, paths, tta=tta, batch_size=batch_size,
                                                num_workers=num_workers, device=device,
                                                skipped=skipped)
    return kept, combine(probabilities, vote)


def members_probabilities(members: Sequence[LoadedClassifier], paths: Sequence[str | os.PathLike],
                          *, tta: bool = False, batch_size: int = 32, num_workers: int = 0,
                          device: torch.device | str = "cpu",
                          skipped: list[tuple[str, str]] | None = None
                          ) -> tuple[list[str], torch.Tensor]:
    """(the paths read, every member's probabilities ``[M, N, K]``), as `ensemble_scores` reads them."""
    groups: dict[tuple, list[int]] = {}
    for index, member in enumerate(members):
        key = (member.image_size, member.crop_fraction, tuple(member.mean), tuple(member.std))
        groups.setdefault(key, []).append(index)
    per_member: list[torch.Tensor | None] = [None] * len(members)
    kept: list[str] | None = None
    for indices in groups.values():
        first = members[indices[0]]
        dataset = ImageFolderDataset([(str(p), -1) for p in paths], first.classes,
                                     first.eval_transform(), skip_invalid=skipped is not None)
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                            collate_fn=collate_classification)
        read: list[str] = []
        batches: dict[int, list[torch.Tensor]] = {i: [] for i in indices}
        for batch in progress_bar(loader, desc="classify", unit="batch", leave=False):
            if skipped is not None and kept is None:  # the same files fail in every pass
                skipped += batch["skipped"]
            if batch["image"] is None:
                continue
            read += batch["path"]
            images = batch["image"].to(device)
            for i in indices:
                batches[i].append(member_probabilities(members[i], images, tta))
        kept = read if kept is None else kept
        for i in indices:
            per_member[i] = torch.cat(batches[i]) if batches[i] else torch.zeros(0, len(first.classes))
    return kept or [], torch.stack(per_member)  # type: ignore[arg-type]


def score_members(ckpts: Sequence[str | os.PathLike], samples: Sequence[tuple[str, int]],
                  classes: Sequence[str], device: torch.device | str = "cpu") -> dict:
    """Accuracy on labelled ``samples`` ``(path, label index into classes)`` of each checkpoint,
    their mean, and of their soft-vote ensemble."""
    members = [load_classifier(c, device) for c in ckpts]
    check_members(members, [str(c) for c in ckpts])
    if members[0].classes != list(classes):
        raise ConfigError(f"{ckpts[0]}: classes {members[0].classes} differ from the data's {list(classes)}")
    truth = {path: label for path, label in samples}
    kept, probabilities = members_probabilities(members, list(truth), device=device)  # [M, N, K]
    labels = torch.tensor([truth[p] for p in kept])  # [N]

    def accuracy(scores: torch.Tensor) -> float:
        return float((scores.argmax(1) == labels).float().mean())

    each = [accuracy(member) for member in probabilities]  # each member's own top class
    return {"member_acc": [round(a, 4) for a in each],
            "member_mean_acc": round(sum(each) / len(each), 4),
            "ensemble_acc": round(accuracy(combine(probabilities, "soft")), 4)}
