"""Multi-label tasks in the outputs of labelling: each behaviour as a two-class task of its own.

The files of :mod:`kit.results.labelling` (frame and segment tables, barcode, overlay) take
``{task: (L, K)}`` probabilities whose rows sum to 1 and show each frame's top class. A multi-label
task has instead one sigmoid per behaviour and a threshold per behaviour (the run's
``thresholds.json``). :func:`binary_view` turns behaviour ``b`` of task ``t`` into the task
``t:b`` with the classes ``-`` (off) and ``b`` (on), whose "on" score is the probability rescaled
piecewise-linearly so that the behaviour's threshold lands on 0.5: the top class is then exactly
the decision ``p >= threshold``, 0 and 1 stay 0 and 1, and the barcode's curve crosses its middle
where the decision flips. :func:`behaviour_columns` gives the frame table the raw probability
(``t:b_prob``) and the 0/1 decision (``t:b``) per behaviour.

Legend: ``L`` frames of a video, ``K`` behaviours of a task.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from kit.data.labels import NONE

__all__ = ["binary_view", "binary_vocab", "behaviour_columns", "rescale"]


def rescale(p: np.ndarray, threshold: float) -> np.ndarray:
    """Probabilities mapped so that ``threshold`` -> 0.5 (piecewise linear; ``p >= threshold`` -> ``> 0.5``).

    Example:
        >>> rescale(np.array([0.0, 0.1, 0.2, 1.0]), 0.2).round(3).tolist()
        [0.0, 0.25, 0.5, 1.0]
    """
    th = float(np.clip(threshold, 1e-6, 1 - 1e-6))
    p = np.asarray(p, np.float64)
    q = np.where(p < th, 0.5 * p / th, 0.5 + 0.5 * (p - th) / (1 - th))
    return np.where(p >= th, np.maximum(q, 0.5 + 1e-6), np.minimum(q, 0.5 - 1e-6)).clip(0, 1)


def binary_view(probs: Mapping[str, np.ndarray], vocab: Mapping[str, Sequence[str]], multilabel: Sequence[str],
                thresholds: Mapping[str, Mapping[str, float]]) -> tuple[dict, dict]:
    """``(probs, vocab)`` with every multi-label task ``t`` replaced by one task ``t:b`` per behaviour.

    Shapes:
        probs: {task: (L, K)}; returns {task or "t:b": (L, K) or (L, 2)} in vocab order.
    """
    out_p, out_v = {}, {}
    for t, names in vocab.items():
        if t not in multilabel:
            out_p[t], out_v[t] = probs[t], list(names)
            continue
        p = np.asarray(probs[t])
        if p.ndim != 2 or p.shape[1] != len(names):
            raise ValueError(f"probs[{t!r}] expected (L, {len(names)}), got {p.shape}")
        for k, b in enumerate(names):
            q = rescale(p[:, k], (thresholds.get(t) or {}).get(b, 0.5))  # (L,)
            out_p[f"{t}:{b}"] = np.stack([1 - q, q], 1).astype(np.float32)  # (L, 2): off, on
            out_v[f"{t}:{b}"] = [NONE, b]
    return out_p, out_v


def binary_vocab(vocab: Mapping[str, Sequence[str]], multilabel: Sequence[str]) -> dict[str, list[str]]:
    """The vocabulary of :func:`binary_view`: ``t:b`` -> ``["-", b]`` per behaviour of a multi-label task."""
    out = {}
    for t, names in vocab.items():
        out.update({f"{t}:{b}": [NONE, b] for b in names} if t in multilabel else {t: list(names)})
    return out


def behaviour_columns(probs: Mapping[str, np.ndarray], vocab: Mapping[str, Sequence[str]], multilabel: Sequence[str],
                      thresholds: Mapping[str, Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Frame-table columns per behaviour: ``t:b`` (1 when ``p >= threshold``, else 0) and ``t:b_prob`` (p)."""
    cols = {}
    for t in multilabel:
        for k, b in enumerate(vocab[t]):
            p = np.asarray(probs[t])[:, k]
            cols[f"{t}:{b}"] = (p >= (thresholds.get(t) or {}).get(b, 0.5)).astype(np.int64)
            cols[f"{t}:{b}_prob"] = p
    return cols
