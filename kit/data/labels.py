"""Vocabularies and class indices: the tasks of a dataset, their classes, labels as indices.

The classes of each task come from the training split only (:func:`build_vocab`, sorted names);
:func:`encode_labels` turns a video's label strings into indices, with ``IGNORE_INDEX`` for
unlabeled frames and ``UNSEEN`` for labels the training split never had (skipped by the loss,
counted as errors by the metrics); :func:`unseen_labels` counts the latter, for a warning.

Multi-label tasks (behaviours that overlap): a task is multi-label when one of its cells holds
several labels joined by ``|`` (``groom|rear``) or the "none of them" mark ``-``
(:func:`multilabel_tasks`); its classes are the behaviours, and :func:`encode_multilabel` gives
one 0/1 target per behaviour and frame, ``IGNORE_INDEX`` in every behaviour of an unlabeled frame.

Legend: ``L`` frames in a video.
"""
from __future__ import annotations

import numpy as np

from kit.data.contract import VideoRecord
from kit.data.video import DataError, problem

__all__ = ["IGNORE_INDEX", "UNSEEN", "SEP", "NONE", "tasks_of", "multilabel_tasks", "split_labels", "build_vocab",
           "encode_labels", "encode_multilabel", "unseen_labels"]

IGNORE_INDEX = -100  # torch's cross-entropy default: unlabeled
UNSEEN = -1  # a label the training split never had: skipped by the loss, an error for the metrics
SEP = "|"  # joins the behaviours of one frame in a multi-label cell: "groom|rear"
NONE = "-"  # a multi-label cell for "labelled, none of the behaviours" (an empty cell is unlabeled)


def split_labels(cell: str) -> list[str]:
    """The behaviours of one multi-label cell: ``"groom|rear"`` -> ``["groom", "rear"]``, ``"-"`` -> ``[]``."""
    return [] if cell == NONE else [v.strip() for v in cell.split(SEP) if v.strip() and v.strip() != NONE]


def multilabel_tasks(records: list[VideoRecord]) -> list[str]:
    """Tasks with a cell holding ``|`` or ``-`` in any of ``records``: one sigmoid per behaviour."""
    out = []
    for r in records:
        out += [t for t, cells in r.labels.items() if t not in out and any(v == NONE or SEP in v for v in cells)]
    return out


def tasks_of(records: list[VideoRecord]) -> list[str]:
    """``action``, then every other label column that has at least one label in ``records``."""
    tasks = ["action"]
    for r in records:
        tasks += [t for t in r.labels if t not in tasks and any(r.labels[t])]
    return tasks


def build_vocab(train_records: list[VideoRecord], tasks: list[str],
                multilabel: list[str] = ()) -> dict[str, list[str]]:
    """Sorted class names seen in the training videos, per task (labels only in val are ignored).

    A task in ``multilabel`` gets the behaviours its cells name (``groom|rear`` -> groom, rear).
    """
    vocab = {}
    for t in tasks:
        cells = {v for r in train_records for v in r.labels.get(t, ()) if v}
        vocab[t] = sorted({b for v in cells for b in split_labels(v)} if t in multilabel else cells)
        if not vocab[t]:
            raise DataError.of([problem(f"task {t!r}", f"no labeled frame in the {len(train_records)} "
                                        "training videos", "label some training frames, change the split, or "
                                        "drop the column (model_type='action_only' keeps only action)", column=t)])
    return vocab


def encode_labels(labels: list[str] | None, classes: list[str], n: int) -> np.ndarray:
    """Label strings -> class indices ``(L,)``: unlabeled -> ``IGNORE_INDEX``, a label not in
    ``classes`` (never seen in training) -> ``UNSEEN``, which the loss skips and the metrics count as
    an error."""
    if labels is None:
        return np.full(n, IGNORE_INDEX, np.int64)
    index = {c: k for k, c in enumerate(classes)}
    return np.array([IGNORE_INDEX if not v else index.get(v, UNSEEN) for v in labels], np.int64)


def encode_multilabel(labels: list[str] | None, classes: list[str], n: int) -> np.ndarray:
    """Multi-label cells -> one 0/1 target per behaviour ``(L, K)`` float32; an unlabeled frame is
    ``IGNORE_INDEX`` in every behaviour. Behaviours not in ``classes`` are left out (never trained).

    Example:
        >>> encode_multilabel(["groom|rear", "-", ""], ["groom", "rear"], 3).tolist()
        [[1.0, 1.0], [0.0, 0.0], [-100.0, -100.0]]
    """
    out = np.zeros((n, len(classes)), np.float32)  # (L, K)
    if labels is None:
        out[:] = IGNORE_INDEX
        return out
    index = {c: k for k, c in enumerate(classes)}
    for i, v in enumerate(labels):
        if not v:
            out[i] = IGNORE_INDEX
            continue
        for b in split_labels(v):
            if b in index:
                out[i, index[b]] = 1.0
    return out


def unseen_labels(records: list[VideoRecord], vocab: dict[str, list[str]],
                  multilabel: list[str] = ()) -> dict[str, dict[str, int]]:
    """``{task: {label: frames}}`` of labels in ``records`` that ``vocab`` (the training split's) lacks."""
    out: dict[str, dict[str, int]] = {}
    for task, classes in vocab.items():
        known = set(classes)
        counts: dict[str, int] = {}
        for r in records:
            for cell in r.labels.get(task, ()):
                for v in (split_labels(cell) if task in multilabel else [cell]):
                    if v and v not in known:
                        counts[v] = counts.get(v, 0) + 1
        if counts:
            out[task] = dict(sorted(counts.items()))
    return out
