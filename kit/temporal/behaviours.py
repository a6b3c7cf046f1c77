"""Multi-label tasks scored per behaviour: thresholds, frame and segment metrics, average precision.

A multi-label task (``kit.data.labels``: ``groom|rear`` cells) predicts one probability per
behaviour and frame. Each behaviour is its own on/off sequence:

- its **threshold** is chosen on the validation split (:func:`choose_thresholds`: the one of
  0.01, 0.02, ..., 0.99 with the highest frame F1; 0.5 when the split has no frame of it), as
  DeepEthogram tunes one threshold per behaviour, and saved in the run's ``thresholds.json``;
- **frame** precision, recall and F1 of ``p >= threshold`` over labelled frames;
- **average precision** (threshold-free) of the probabilities: ``Σ_n (R_n - R_{n-1}) P_n`` over
  the distinct scores in decreasing order, scikit-learn's ``average_precision_score`` (no
  interpolation), written with numpy;
- **edit and F1@{10,25,50}** of :mod:`kit.temporal.metrics` on the 0/1 sequence with 0 as
  background: the behaviour's bouts are the segments; unlabelled frames separate them.

All scores are percent. A ``mean`` entry averages each metric over the behaviours that occur in
the ground truth (support > 0).

Legend: ``L`` frames in a video, ``K`` behaviours of the task.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from kit.temporal.metrics import IGNORE_INDEX, OVERLAPS, edit_score, f1_at_k

GRID = np.round(np.arange(1, 100) / 100, 2)  # candidate thresholds
METRICS = ("precision", "recall", "f1", "ap", "edit", "f1@10", "f1@25", "f1@50")


def _stack(probs: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All videos' labelled frames: probabilities (N, K) and 0/1 targets (N, K) (unlabelled dropped)."""
    if len(probs) != len(targets):
        raise ValueError(f"got probabilities of {len(probs)} videos but targets of {len(targets)}")
    ps, ys = [], []
    for i, (p, y) in enumerate(zip(probs, targets)):
        p, y = np.asarray(p, np.float64), np.asarray(y)
        if p.ndim != 2 or p.shape != y.shape:
            raise ValueError(f"video {i}: probabilities {p.shape} and targets {y.shape} must both be (L, K)")
        keep = (y != IGNORE_INDEX).all(1)
        ps.append(p[keep])
        ys.append(y[keep].astype(np.int64))
    K = np.asarray(probs[0]).shape[1] if len(probs) else 0
    return (np.concatenate(ps) if ps else np.zeros((0, K)), np.concatenate(ys) if ys else np.zeros((0, K), np.int64))


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Average precision in percent of one behaviour (NaN without a positive frame).

    Example:
        >>> average_precision(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
        83.33333333333333
    """
    scores, targets = np.asarray(scores, np.float64), np.asarray(targets).astype(bool)
    positives = int(targets.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], targets[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the last frame of each distinct score
    tp = np.cumsum(t)[last]
    precision, recall = tp / (last + 1), tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision) * 100.0)


def _prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall, F1 in percent of 0/1 arrays (0 where a denominator is 0)."""
    tp = float((pred & truth).sum())
    p = tp / pred.sum() if pred.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    return 100 * p, 100 * r, (200 * p * r / (p + r) if p + r else 0.0)


def choose_thresholds(probs: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                      names: Sequence[str]) -> dict[str, float]:
    """Per behaviour the grid threshold with the highest frame F1 over ``probs`` (the lowest on ties).

    Shapes:
        probs, targets: per video (L, K); targets 0/1, ``IGNORE_INDEX`` on unlabelled frames.
    """
    p, y = _stack(probs, targets)
    out = {}
    for k, name in enumerate(names):
        truth = y[:, k] == 1
        if not truth.any():
            out[name] = 0.5
            continue
        f1 = [_prf(p[:, k] >= th, truth)[2] for th in GRID]
        out[name] = float(GRID[int(np.argmax(f1))])
    return out


def decide(probs: np.ndarray, names: Sequence[str], thresholds: Mapping[str, float] | None) -> np.ndarray:
    """0/1 decisions ``(L, K)`` int64: ``p >= threshold`` per behaviour (0.5 when none is given)."""
    th = np.array([float((thresholds or {}).get(n, 0.5)) for n in names])
    return (np.asarray(probs) >= th[None, :]).astype(np.int64)


def behaviour_metrics(probs: Sequence[np.ndarray], targets: Sequence[np.ndarray], names: Sequence[str],
                      thresholds: Mapping[str, float] | None = None) -> dict:
    """``{behaviour: {precision, recall, f1, ap, edit, f1@10, f1@25, f1@50, threshold, support,
    frames_pct}, "mean": {...}}``: scores in percent, ``support`` labelled frames where it happens.

    Shapes:
        probs, targets: per video (L, K); targets 0/1, ``IGNORE_INDEX`` on unlabelled frames.
    """
    p, y = _stack(probs, targets)
    out: dict = {}
    for k, name in enumerate(names):
        th = float((thresholds or {}).get(name, 0.5))
        truth = y[:, k] == 1
        prec, rec, f1 = _prf(p[:, k] >= th, truth)
        pred_seq = [(np.asarray(v)[:, k] >= th).astype(np.int64) for v in probs]
        gt_seq = [np.where((np.asarray(t) == IGNORE_INDEX).any(1), IGNORE_INDEX, np.asarray(t)[:, k]).astype(np.int64)
                  for t in targets]
        row = {"precision": prec, "recall": rec, "f1": f1, "ap": average_precision(p[:, k], truth),
               "edit": edit_score(pred_seq, gt_seq, background=[0])}
        for o in OVERLAPS:
            row[f"f1@{o}"] = f1_at_k(pred_seq, gt_seq, o, background=[0])
        row.update(threshold=th, support=int(truth.sum()), frames_pct=100.0 * truth.mean() if len(truth) else 0.0)
        out[name] = row
    present = [out[n] for n in names if out[n]["support"] > 0]
    out["mean"] = {m: float(np.nanmean([r[m] for r in present])) if present else float("nan") for m in METRICS}
    return out
