"""The metrics of temporal action segmentation, in percent as the literature reports them.

Every function takes per-video label sequences: ``preds`` and ``gts`` are lists (one entry per
video) of 1D sequences of equal length, numpy int arrays of class indices or lists of label
strings. A video with no labelled frame is skipped altogether.

Unlabelled frames (ground truth ``IGNORE_INDEX`` = -100, ``""`` or ``None``): frame accuracy,
macro-F1 and the confusion matrix leave them out; in edit and F1@k an unlabelled stretch
*separates* segments, like a background run, and counts neither as a hit nor as a miss (the
predicted frames inside it belong to no segment). Dropping them instead would merge two instances
of a class on either side of a gap into one. Ground-truth labels the model never saw in training
(``UNSEEN`` = -1 from ``kit.data.labels.encode_labels``) are ordinary classes here: never
predicted, they count as errors in every metric.

- frame accuracy: correct frames / all labelled frames, pooled over videos (MS-TCN's ``eval.py``).
- macro-F1: per-frame F1 averaged over the ground truth's classes (support > 0): see :func:`macro_f1`.
- segmental edit score (Lea et al., "Temporal Convolutional Networks for Action Segmentation
  and Detection", CVPR 2017): ``(1 - Levenshtein(P, Y) / max(|P|, |Y|)) * 100`` over the
  sequences of segment labels, per video, then averaged over videos.
- F1@k (Farha & Gall, "MS-TCN: Multi-Stage Temporal Convolutional Network for Action
  Segmentation", CVPR 2019, after Lea et al. 2017): a predicted segment is a true positive when
  its IoU with the best-overlapping ground-truth segment of the same label is >= k/100 and that
  segment is not yet matched; TP/FP/FN are summed over videos, then ``F1 = 2PR/(P+R) * 100``.

Edit and F1@k follow MS-TCN's ``eval.py`` (github.com/yabufarha/ms-tcn) line for line: a segment
is a maximal run of equal labels; runs of a ``background`` label are dropped (the runs on either
side of a background run stay separate segments even when their labels agree); a predicted
segment is compared only with the ground-truth segment of highest IoU (first one on ties), and
counts as a false positive when that one is already matched. Where ``eval.py`` fails, this
module decides: a video with no segment predicted and none in the ground truth (say, all
background) scores edit 100 (``eval.py``: 0/0 = NaN); predicted segments in a video without ground-truth
segments are false positives (``eval.py``: argmax of an empty array); precision or recall with a
zero denominator is 0 and so is F1 when both are 0 (``eval.py``: ``nan_to_num``, the same).

Example:
    >>> gt = [[0, 0, 1, 1, 1, 2]]
    >>> segment_metrics([[0, 0, 0, 1, 1, 2]], gt)["edit"], segment_metrics(gt, gt)["f1@50"]
    (100.0, 100.0)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

IGNORE_INDEX = -100  # the same value as kit.data.IGNORE_INDEX (kept here: no heavy import)
OVERLAPS = (10, 25, 50)  # the k of F1@k, in percent


def _pairs(preds: Sequence, gts: Sequence) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per video: (pred, gt, labelled mask), shapes checked; videos with no labelled frame left out."""
    if len(preds) != len(gts):
        raise ValueError(f"got predictions for {len(preds)} videos but ground truth for {len(gts)}")
    out = []
    for i, (p, g) in enumerate(zip(preds, gts)):
        p, g = np.asarray(p), np.asarray(g)
        if p.ndim != 1 or g.ndim != 1 or len(p) != len(g):
            raise ValueError(f"video {i}: prediction {p.shape} and ground truth {g.shape} must be "
                             "1D sequences of the same length (one label per frame)")
        if g.dtype.kind in "iuf":
            keep = g != IGNORE_INDEX
        else:
            keep = np.array([x is not None and x != "" and x != IGNORE_INDEX for x in g.tolist()], bool)
        if keep.any():
            out.append((p, g, keep))
    return out


def _clean(preds: Sequence, gts: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of (pred, gt) arrays with unlabelled frames dropped (frame-level metrics)."""
    return [(p[keep], g[keep]) for p, g, keep in _pairs(preds, gts)]


_GAP = "\x00unlabeled"  # marks unlabelled frames of string sequences in the segment metrics


def _gapped(preds: Sequence, gts: Sequence) -> list[tuple[np.ndarray, np.ndarray, object]]:
    """Per video: (pred, gt, gap) with every unlabelled frame set to ``gap`` in both (segment metrics).

    An unlabelled stretch then separates segments, like a background run, and counts neither as a
    hit nor as a miss: its predicted frames belong to no segment.
    """
    out = []
    for p, g, keep in _pairs(preds, gts):
        if g.dtype.kind in "iuf" and p.dtype.kind in "iuf":
            gap = IGNORE_INDEX
            p, g = p.astype(np.int64), g.astype(np.int64)
        else:
            gap = _GAP
            p, g = p.astype(object), g.astype(object)
        p[~keep], g[~keep] = gap, gap
        out.append((p, g, gap))
    return out


def segments(labels: Sequence, background: Sequence = ()) -> tuple[list, list[int], list[int]]:
    """Runs of equal labels as (labels, starts, ends), ends exclusive, background runs dropped.

    MS-TCN's ``get_labels_start_end_time``.

    Example:
        >>> segments(["bg", "a", "a", "bg", "a", "b"], background=["bg"])
        (['a', 'a', 'b'], [1, 4, 5], [3, 5, 6])
    """
    seq = np.asarray(labels).tolist()
    bg = set(background)
    out: tuple[list, list[int], list[int]] = ([], [], [])
    start = 0
    for i in range(1, len(seq) + 1):
        if i == len(seq) or seq[i] != seq[start]:
            if seq[start] not in bg:
                out[0].append(seq[start])
                out[1].append(start)
                out[2].append(i)
            start = i
    return out


def levenshtein(p: Sequence, y: Sequence) -> int:
    """Edit distance (insertions, deletions, substitutions cost 1) between two sequences."""
    row = list(range(len(y) + 1))
    for i, a in enumerate(p, 1):
        prev, row[0] = row[0], i
        for j, b in enumerate(y, 1):
            prev, row[j] = row[j], prev if a == b else 1 + min(row[j], row[j - 1], prev)
    return row[-1]


def _edit(p: np.ndarray, g: np.ndarray, background: Sequence) -> float:
    P, Y = segments(p, background)[0], segments(g, background)[0]
    if not P and not Y:
        return 100.0
    return (1.0 - levenshtein(P, Y) / max(len(P), len(Y))) * 100.0


def _tp_fp_fn(p: np.ndarray, g: np.ndarray, overlap: float, background: Sequence) -> tuple[int, int, int]:
    """MS-TCN's ``f_score`` for one video: IoU matching, each ground-truth segment at most once."""
    p_label, p_start, p_end = segments(p, background)
    y_label, y_start, y_end = (np.asarray(x) for x in segments(g, background))
    if len(y_label) == 0:
        return 0, len(p_label), 0
    tp = fp = 0
    hits = np.zeros(len(y_label), bool)
    for label, start, end in zip(p_label, p_start, p_end):
        intersection = np.minimum(end, y_end) - np.maximum(start, y_start)
        union = np.maximum(end, y_end) - np.minimum(start, y_start)
        iou = intersection / union * (y_label == label)
        best = int(iou.argmax())  # the first one on ties, as numpy's argmax
        if iou[best] >= overlap and not hits[best]:
            tp += 1
            hits[best] = True
        else:
            fp += 1
    return tp, fp, len(y_label) - int(hits.sum())


def frame_accuracy(preds: Sequence, gts: Sequence) -> float:
    """Percent of labelled frames predicted right, pooled over all videos (NaN if none)."""
    pairs = _clean(preds, gts)
    if not pairs:
        return float("nan")
    correct = sum(int((p == g).sum()) for p, g in pairs)
    return 100.0 * correct / sum(len(g) for _, g in pairs)


def macro_f1(preds: Sequence, gts: Sequence) -> float:
    """Per-frame F1 averaged over the classes of the ground truth (labelled frames, support > 0), in percent.

    The one macro-F1 of the kit: a class that occurs in the evaluated frames counts once, scoring 0
    when never predicted right; a class absent from the ground truth does not count (predicting it
    lowers the precision of no class, only the F1 of the classes whose frames it took). Ground-truth
    classes the model never saw in training (``UNSEEN``) count like any other: they score 0.
    """
    pairs = _clean(preds, gts)
    if not pairs:
        return float("nan")
    p, g = (np.concatenate(x) for x in zip(*pairs))
    tp, pred_n, true_n = _counts(p, g, np.unique(g))
    return 100.0 * float(np.mean(2.0 * tp / (pred_n + true_n)))  # support > 0: never 0 / 0


def edit_score(preds: Sequence, gts: Sequence, background: Sequence = ()) -> float:
    """Segmental edit score (Lea et al. 2017), per video then averaged, in percent."""
    videos = _gapped(preds, gts)
    if not videos:
        return float("nan")
    return float(np.mean([_edit(p, g, [*background, gap]) for p, g, gap in videos]))


def f1_at_k(preds: Sequence, gts: Sequence, k: float = 50, background: Sequence = ()) -> float:
    """Segmental F1@k (Farha & Gall 2019) in percent; ``k`` is the IoU threshold in percent.

    Example:
        >>> f1_at_k([[0, 0, 0, 1]], [[0, 0, 1, 1]], k=50)  # IoUs 2/3 and 1/2: both match
        100.0
    """
    if not 1 <= k <= 100:
        raise ValueError(f"k is the IoU threshold in percent (10, 25, 50), got {k}")
    videos = _gapped(preds, gts)
    if not videos:
        return float("nan")
    tp, fp, fn = np.sum([_tp_fp_fn(p, g, k / 100, [*background, gap]) for p, g, gap in videos], axis=0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    if precision + recall == 0:
        return 0.0
    return float(2.0 * precision * recall / (precision + recall) * 100.0)


def segment_metrics(preds: Sequence, gts: Sequence, background: Sequence = ()) -> dict[str, float]:
    """Frame accuracy, edit and F1@{10,25,50} in percent: ``acc, edit, f1@10, f1@25, f1@50``.

    Example:
        >>> segment_metrics([[0, 1, 1, 1]], [[0, 0, 1, 1]])  # IoUs 1/2 and 2/3
        {'acc': 75.0, 'edit': 100.0, 'f1@10': 100.0, 'f1@25': 100.0, 'f1@50': 100.0}
    """
    out = {"acc": frame_accuracy(preds, gts), "edit": edit_score(preds, gts, background)}
    for k in OVERLAPS:
        out[f"f1@{k}"] = f1_at_k(preds, gts, k, background)
    return out


def confusion(preds: Sequence, gts: Sequence, labels: Sequence | None = None) -> np.ndarray:
    """Frame counts, rows = ground truth, columns = prediction, in the order of ``labels``
    (what scikit-learn's ``confusion_matrix`` gives, in numpy; default: the sorted classes present).
    Frames whose truth or prediction is not in ``labels`` are left out."""
    pairs = _clean(preds, gts)
    if not pairs:
        n = 0 if labels is None else len(labels)
        return np.zeros((n, n), dtype=np.int64)
    p, g = (np.concatenate(x) for x in zip(*pairs))
    labels = np.union1d(g, p) if labels is None else np.asarray(labels)
    n = len(labels)
    gi, pi = _positions(g, labels), _positions(p, labels)
    both = (gi >= 0) & (pi >= 0)
    return np.bincount(gi[both] * n + pi[both], minlength=n * n).reshape(n, n).astype(np.int64)  # (C, C)


def per_class_report(preds: Sequence, gts: Sequence, labels: Sequence | None = None,
                     class_names: Sequence[str] | None = None):
    """Precision, recall and F1 per class (as scikit-learn's ``classification_report``), in percent.

    Rows: one per class (named by ``class_names`` when given); columns ``precision, recall,
    f1-score, support``. No average rows: the kit's one macro-F1 is :func:`macro_f1` (over the
    classes with support), and an average over a vocabulary that includes classes absent from the
    split would be a second, different number.
    """
    import pandas as pd

    pairs = _clean(preds, gts)
    if not pairs:
        raise ValueError("per_class_report: no labelled frame to report on")
    p, g = (np.concatenate(x) for x in zip(*pairs))
    if labels is None and class_names is not None:
        labels = list(range(len(class_names))) if g.dtype.kind in "iu" else list(class_names)
    labels = np.union1d(g, p) if labels is None else np.asarray(labels)
    names = [str(x) for x in (labels if class_names is None else class_names)]
    if len(names) != len(labels):
        raise ValueError(f"per_class_report: {len(labels)} labels but {len(class_names)} class_names")
    tp, pred_n, true_n = _counts(p, g, labels)
    precision, recall = _ratio(tp, pred_n), _ratio(tp, true_n)
    f1 = _ratio(2.0 * tp, pred_n + true_n)  # = 2PR / (P + R); 0 where nothing was predicted or true
    return pd.DataFrame({"precision": 100.0 * precision, "recall": 100.0 * recall, "f1-score": 100.0 * f1,
                         "support": true_n.astype(int)}, index=names)


def _positions(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Index of each value in ``labels`` (any order), -1 for values not in it."""
    if len(labels) == 0:
        return np.full(len(values), -1)
    order = np.argsort(labels, kind="stable")
    at = np.searchsorted(labels[order], values).clip(0, len(labels) - 1)
    return np.where(labels[order][at] == values, order[at], -1)


def _counts(p: np.ndarray, g: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: frames predicted right, frames predicted as it, frames truly it. ``(C,)`` each."""
    n = len(labels)
    gi, pi = _positions(g, labels), _positions(p, labels)
    tp = np.bincount(gi[(gi >= 0) & (gi == pi)], minlength=n)
    return tp, np.bincount(pi[pi >= 0], minlength=n), np.bincount(gi[gi >= 0], minlength=n)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with 0 where ``b`` is 0 (scikit-learn's ``zero_division=0``)."""
    return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)


def task_metrics(preds: Sequence, gts: Sequence, class_names: Sequence[str] | None = None,
                 background: Sequence = ()) -> dict[str, float]:
    """Everything for one task: ``acc, macro_f1, edit, f1@10, f1@25, f1@50`` in percent.

    ``background`` may hold class names even when the sequences hold indices into
    ``class_names`` (e.g. ``background=["idle"]``); names are mapped to their index.
    """
    names = list(class_names or [])
    bg = list(background) + [names.index(b) for b in background if isinstance(b, str) and b in names]
    out = segment_metrics(preds, gts, bg)
    out = {"acc": out.pop("acc"), "macro_f1": macro_f1(preds, gts), **out}
    return out
