"""The loss terms for rare classes and overlapping behaviours, used by :func:`kit.temporal.model.segmentation_loss`.

- focal cross-entropy (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017):
  ``-w_y (1 - p_y) ** gamma log p_y`` per frame, so frames the model already gets right weigh little;
- binary cross-entropy per behaviour of a multi-label task (optionally focal, with BCE's
  ``pos_weight`` per behaviour as its class weights) plus MS-TCN's smoothing on the log-sigmoids.

Legend: ``B`` videos or windows, ``T`` frames, ``K`` classes or behaviours, ``N`` frames flattened.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # same value as kit.data.IGNORE_INDEX


def _focal_ce(logits: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None, gamma: float) -> torch.Tensor:
    """Summed focal cross-entropy ``-w_y (1 - p_y)^gamma log p_y`` over frames whose target is not
    ``IGNORE_INDEX``. Shapes: logits (N, K), target (N,) long; returns a scalar."""
    real = target != IGNORE_INDEX
    y = target.clamp_min(0)
    logp = logits.log_softmax(-1).gather(1, y[:, None])[:, 0]  # (N,)
    term = -(1 - logp.exp()).pow(gamma) * logp
    if w is not None:
        term = term * w[y]
    return (term * real).sum()


def _multilabel_loss(logits, target, mask, pairs, pos_weight, loss, gamma, smooth_weight, smooth_tau):
    """(BCE or focal BCE averaged over labelled frames and behaviours, smoothing) of one multi-label task.

    Shapes: logits (B, T, K), target (B, T, K) float 0/1 or IGNORE_INDEX, mask (B, T), pairs (B, T-1).
    """
    if target.shape != logits.shape:
        raise ValueError(f"multi-label targets expected {tuple(logits.shape)} (B, T, K), got {tuple(target.shape)}")
    real = (target != IGNORE_INDEX) & mask[..., None]  # (B, T, K)
    y = target.clamp(0, 1).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight, reduction="none")  # (B, T, K)
    if loss == "focal":
        p = logits.sigmoid()
        bce = bce * (1 - torch.where(y > 0.5, p, 1 - p)).pow(gamma)
    ce = (bce * real).sum() / real.sum().clamp_min(1)
    logp = F.logsigmoid(logits)  # (B, T, K)
    sq = (logp[:, 1:] - logp[:, :-1].detach()).pow(2).clamp(max=smooth_tau ** 2)
    smooth = smooth_weight * (sq.mean(-1) * pairs).sum() / pairs.sum().clamp_min(1)
    return ce, smooth


def pos_weights_from_counts(positive, labelled) -> torch.Tensor:
    """Per behaviour ``negatives / positives`` (BCE's ``pos_weight``), 1 where a behaviour never occurs.

    Example:
        >>> pos_weights_from_counts([10, 0], [100, 100]).tolist()
        [9.0, 1.0]
    """
    pos = torch.as_tensor(positive, dtype=torch.float32)
    n = torch.as_tensor(labelled, dtype=torch.float32)
    return torch.where(pos > 0, (n - pos) / pos.clamp_min(1), torch.ones_like(pos))
