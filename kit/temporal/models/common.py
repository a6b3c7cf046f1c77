"""What every temporal model shares: per-task probabilities over the concatenated class axis.

Every temporal model in :mod:`kit.temporal.models` puts the logits of all tasks side by side on
one channel axis, ``(B, ΣK, T)``, in the order of ``num_classes``. A single-label task's block is
a softmax over its ``K`` classes; a multi-label task's block (one independent behaviour per
channel) is a sigmoid per channel. Refinement stages and diffusion decoders take these
probabilities, never a softmax over all tasks at once.
"""
from __future__ import annotations

from typing import Sequence

import torch


def task_probs(logits: torch.Tensor, sizes: Sequence[int], multilabel: Sequence[bool] | None = None,
               dim: int = 1) -> torch.Tensor:
    """Per-task probabilities of side-by-side logits.

    Args:
        logits: every task's logits concatenated along ``dim``.
        sizes: classes per task, in order; they sum to ``logits.shape[dim]``.
        multilabel: per task, True for a sigmoid per channel (None: every task single-label).

    Shapes:
        logits: (B, ΣK, T) with the default ``dim=1``; returns the same shape.

    Example:
        >>> p = task_probs(torch.zeros(1, 5, 2), [3, 2], [False, True])
        >>> p[0, :, 0].tolist()
        [0.3333333432674408, 0.3333333432674408, 0.3333333432674408, 0.5, 0.5]
    """
    if sum(sizes) != logits.shape[dim]:
        raise ValueError(f"task sizes {list(sizes)} sum to {sum(sizes)}, logits have {logits.shape[dim]} on dim {dim}")
    multilabel = [False] * len(sizes) if multilabel is None else list(multilabel)
    if len(multilabel) != len(sizes):
        raise ValueError(f"multilabel has {len(multilabel)} entries for {len(sizes)} tasks")
    blocks = logits.split(list(sizes), dim)
    return torch.cat([b.sigmoid() if ml else b.softmax(dim) for b, ml in zip(blocks, multilabel)], dim)


class StagedModel(torch.nn.Module):
    """What the temporal models share: the task layout, the input checks, the stage outputs, the loss.

    A subclass builds its layers in ``__init__`` after ``super().__init__(in_dim, num_classes,
    multilabel)`` and implements ``stage_logits(x, m) -> list[(B, ΣK, T)]`` on channel-first input whose
    padded frames are already zero. ``forward`` does the checks and the per-task split.

    Attributes:
        in_dim, tasks (names, the logit order), sizes (classes per task), multilabel (per task bool).
    """

    name = ""  # the registry name (kit.temporal.models.TEMPORAL_MODELS)

    def __init__(self, in_dim: int, num_classes, multilabel=()):
        super().__init__()
        if not num_classes or min(num_classes.values()) < 1:
            raise ValueError(f"{type(self).__name__} needs >= 1 class per task, got {dict(num_classes)}")
        unknown = sorted(set(multilabel) - set(num_classes))
        if unknown:
            raise ValueError(f"multilabel names {unknown}, which are not tasks of {list(num_classes)}")
        self.in_dim, self.tasks = int(in_dim), list(num_classes)
        self.sizes = [int(num_classes[t]) for t in self.tasks]
        self.multilabel = [t in set(multilabel) for t in self.tasks]

    @classmethod
    def upstream_names(cls, state_dict) -> dict[str, str]:
        """Upstream parameter name -> the kit's, for :func:`kit.temporal.models.from_upstream` (default: the same)."""
        return {k: k for k in state_dict}

    @classmethod
    def upstream_hyper(cls, state_dict) -> dict:
        """The sizes an upstream ``state_dict`` was trained with, read off its names and shapes."""
        raise ValueError(f"no upstream checkpoint layout is known for {cls.__name__}")

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def probs(self, logits: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Per-task probabilities of one stage's logits, zero on padded frames. ``(B, ΣK, T)``"""
        return task_probs(logits, self.sizes, self.multilabel) * m

    def stage_logits(self, x: torch.Tensor, m: torch.Tensor) -> list[torch.Tensor]:
        """Shapes: x (B, D, T) zero on padded frames; m (B, 1, T) float; returns [(B, ΣK, T)] per stage."""
        raise NotImplementedError(f"{type(self).__name__} must implement stage_logits")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Per-stage logits of every task.

        Shapes:
            x: (B, T, D); mask: (B, T) bool, True for real frames (None = all real).
            returns: list over stages of {task: (B, T, K_task)}.
        """
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"{type(self).__name__} expected (B, T, {self.in_dim}), got {tuple(x.shape)}")
        real = check_mask(mask, x)[:, None, :]  # (B, 1, T)
        m = real.to(x.dtype)
        x = x.transpose(1, 2).masked_fill(~real, 0.0)  # (B, D, T); fill, not multiply: NaN * 0 = NaN
        return [{t: c.transpose(1, 2) for t, c in zip(self.tasks, o.split(self.sizes, 1))}  # (B, T, K)
                for o in self.stage_logits(x, m)]

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor | None, labels, **loss_kw):
        """The model's training objective: :func:`kit.temporal.model.segmentation_loss` of every stage.

        MS-TCN, MS-TCN++ and ASFormer all train with cross-entropy + 0.15 x the truncated MSE
        smoothing per stage, summed over stages (ms-tcn model.py:77-79, MS-TCN2 model.py:154-155,
        ASFormer model.py:351-354).

        Shapes:
            x: (B, T, D); mask: (B, T) bool or None; labels: {task: (B, T) long}.
            returns: (scalar loss, {name: float}).
        """
        from kit.temporal.model import segmentation_loss  # the loss lives beside the multi-task model

        mask = check_mask(mask, x)
        return segmentation_loss(self(x, mask), labels, mask, **loss_kw)


def count_indices(state_dict, pattern: str) -> int:
    """How many distinct ``(\\d+)`` values ``pattern`` (a regex matched at the start of a name) finds."""
    import re

    return len({m.group(1) for k in state_dict if (m := re.match(pattern, k))})


def check_mask(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``mask`` as bool ``(B, T)`` (all True when None); ValueError for another shape."""
    B, T = x.shape[:2]
    if mask is None:
        return torch.ones(B, T, dtype=torch.bool, device=x.device)
    if mask.shape != (B, T):
        raise ValueError(f"mask expected (B, T) = ({B}, {T}), got {tuple(mask.shape)}")
    return mask.bool()
