"""DiffAct's training targets and loss terms (Finspire13/DiffAct@a223e0c ``model.py``, ``dataset.py``).

Legend: ``B`` batch, ``T`` frames, ``K`` classes of one task, ``L`` one video's real frames.

Each term is computed per task on that task's block of the side-by-side logits and averaged
over real (and, for the label terms, labelled) frames only; padded frames never count. With one
single-label task, every frame labelled and no padding, each term equals upstream's
``get_training_loss`` term (model.py:234-312).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def gaussian_smooth(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter1d(x, sigma)`` along the last axis (mode ``reflect``, ``truncate=4``).

    Upstream smooths boundaries (dataset.py:97) and soft labels (model.py:252, 285) with scipy;
    this is the same filter in torch: radius ``int(truncate * sigma + 0.5)``, weights
    ``exp(-x**2 / (2 sigma**2))`` normalised to 1, edges mirrored including the edge sample
    (``d c b a | a b c d``), computed in float64.

    Shapes:
        x: (N, L); returns (N, L) in x's dtype.
    """
    if sigma <= 0:
        return x
    N, L = x.shape
    r = int(truncate * float(sigma) + 0.5)
    if r == 0 or L == 0:
        return x
    grid = torch.arange(-r, r + 1, dtype=torch.float64, device=x.device)
    w = torch.exp(-0.5 / (float(sigma) ** 2) * grid ** 2)
    w = w / w.sum()
    idx = torch.arange(-r, L + r, device=x.device) % (2 * L)  # scipy 'reflect': period 2L, mirrored half
    idx = torch.where(idx >= L, 2 * L - 1 - idx, idx)
    xp = x.to(torch.float64)[:, idx]  # (N, L + 2r)
    return F.conv1d(xp[:, None], w[None, None])[:, 0].to(x.dtype)  # (N, L)


def boundary_targets(labels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Upstream's smoothed action-boundary target of one video (dataset.py:86-107).

    Both frames at each label change are 1; with ``sigma > 0`` the sequence is Gaussian-smoothed,
    capped at the peak a lone boundary reaches and divided by its maximum, so every boundary peaks
    at 1. An unlabelled stretch (``-100``) counts as a label of its own, as upstream's
    ``get_labels_start_end_time`` on the label strings does. No boundary: all zeros.

    Shapes:
        labels: (L,) long; returns (L,) float32.
    """
    L = labels.shape[0]
    b = torch.zeros(L, dtype=torch.float64, device=labels.device)
    starts = torch.nonzero(labels[1:] != labels[:-1]).flatten() + 1
    b[starts] = 1.0
    b[starts - 1] = 1.0
    if sigma > 0 and L >= 2 and len(starts):
        b = gaussian_smooth(b[None], sigma)[0]
        lone = torch.zeros(1, L, dtype=torch.float64, device=labels.device)
        lone[0, L // 2] = lone[0, L // 2 - 1] = 1.0
        b = b.clamp(max=gaussian_smooth(lone, sigma).max().item())
        b = b / b.max()
    return b.float()


def label_targets(labels: torch.Tensor, K: int, multilabel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class 0/1 targets of one task and where they are known.

    A single-label task's labels are (B, T) class ids; a multi-label task's are (B, T, K) 0/1
    (or (B, T) ids, read as one active class). Negative values mark unlabelled frames.

    Shapes:
        returns: onehot (B, K, T) float, 0 where unlabelled; known (B, T) bool.
    """
    if labels.dim() == 3:
        if not multilabel or labels.shape[-1] != K:
            raise ValueError(f"labels expected (B, T) class ids{' or (B, T, %d) 0/1' % K if multilabel else ''}, "
                             f"got {tuple(labels.shape)}")
        known = (labels >= 0).all(-1)  # (B, T)
        return (labels.clamp_min(0).float() * known[..., None]).permute(0, 2, 1), known
    known = labels >= 0
    if bool((labels >= K).any()):
        raise ValueError(f"labels hold class {int(labels.max())}, but the task has {K} classes")
    onehot = F.one_hot(labels.clamp_min(0), K).float() * known[..., None]  # (B, T, K)
    return onehot.permute(0, 2, 1), known


def ce_term(logits: torch.Tensor, labels: torch.Tensor, known: torch.Tensor, onehot: torch.Tensor,
            multilabel: bool, weight: torch.Tensor | None, soft_sigma: float, lengths: list[int]) -> torch.Tensor:
    """Cross-entropy over real, labelled frames (model.py:244-264, 277-289).

    Hard labels: weighted by class when ``weight`` is given, as a weighted mean (the kit's
    convention; upstream's ``reduction='none'`` + ``mean`` divides by the frame count, with
    weights whose frame-average is about 1). ``soft_sigma > 0``: upstream's soft labels, each
    class's 0/1 row Gaussian-smoothed along time within each video (not renormalised), loss
    ``-sum_k soft_k log p_k`` averaged over frames, no class weights (model.py:250-256). A
    multi-label task: binary cross-entropy per class.

    Shapes:
        logits: (B, K, T); labels: (B, T) or (B, T, K); known: (B, T) bool (real and labelled);
        onehot: (B, K, T); returns a scalar.
    """
    n = known.sum().clamp_min(1)
    if multilabel:
        bce = F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="none").mean(1)  # (B, T)
        return (bce * known).sum() / n
    if soft_sigma > 0:
        soft = torch.zeros_like(onehot)
        for b, L in enumerate(lengths):
            soft[b, :, :L] = gaussian_smooth(onehot[b, :, :L], soft_sigma)
        nll = -(soft * F.log_softmax(logits.float(), 1)).sum(1)  # (B, T)
        return (nll * known).sum() / n
    target = labels.masked_fill(~known, IGNORE_INDEX)
    nll = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="none")
    denom = n if weight is None else weight[target.clamp_min(0)][known].sum().clamp_min(1e-12)
    return nll.sum() / denom


def smooth_term(logp: torch.Tensor, pairs: torch.Tensor, tau: float) -> torch.Tensor:
    """Truncated MSE of adjacent frames' log-probabilities (model.py:258-261, 291-294; MS-TCN's).

    ``clamp((log p_t - log p_{t-1}.detach())**2, 0, tau**2)``, mean over classes and real pairs.

    Shapes:
        logp: (B, K, T); pairs: (B, T-1) bool; returns a scalar.
    """
    sq = (logp[:, :, 1:] - logp.detach()[:, :, :-1]).pow(2).clamp(0, tau ** 2).mean(1)  # (B, T-1)
    return (sq * pairs).sum() / pairs.sum().clamp_min(1)


def boundary_term(logits: torch.Tensor, target: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The decoder's boundary loss (model.py:272-275, 296-297).

    The predicted boundary at ``t`` is ``1 - sum_k p_t(k) p_{t-1}(k)`` (``p_{t-1}`` detached), the
    chance that adjacent frames differ; binary cross-entropy against the smoothed target at ``t``,
    mean over the pairs in ``pairs``.

    Shapes:
        logits: (B, K, T); target: (B, T); pairs: (B, T-1) bool; returns a scalar.
    """
    p = F.softmax(logits.float(), 1)
    pb = (1 - (p[:, :, 1:] * p.detach()[:, :, :-1]).sum(1)).clamp(0, 1)  # (B, T-1); rounding can leave [0, 1]
    bce = F.binary_cross_entropy(pb, target[:, 1:].to(pb.dtype), reduction="none")
    return (bce * pairs).sum() / pairs.sum().clamp_min(1)
