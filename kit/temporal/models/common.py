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
