"""Vocabularies and class indices: the tasks of a dataset, their classes, labels as indices.

The classes of each task come from the training split only (:func:`build_vocab`, sorted names);
:func:`encode_labels` turns a video's label strings into indices, with ``IGNORE_INDEX`` for
unlabeled frames and ``UNSEEN`` for labels the training split never had (skipped by the loss,
counted as errors by the metrics); :func:`unseen_labels` counts the latter, for a warning.

Legend: ``L`` frames in a video.
"""
from __future__ import annotations

import numpy as np

from kit.data.contract import VideoRecord
from kit.data.video import DataError, problem

__all__ = ["IGNORE_INDEX", "UNSEEN", "tasks_of", "build_vocab", "encode_labels", "unseen_labels"]

IGNORE_INDEX = -100  # torch's cross-entropy default: unlabeled
UNSEEN = -1  # a label the training split never had: skipped by the loss, an error for the metrics


def tasks_of(records: list[VideoRecord]) -> list[str]:
    """``action``, then every other label column that has at least one label in ``records``."""
    tasks = ["action"]
    for r in records:
        tasks += [t for t in r.labels if t not in tasks and any(r.labels[t])]
    return tasks


def build_vocab(train_records: list[VideoRecord], tasks: list[str]) -> dict[str, list[str]]:
    """Sorted class names seen in the training videos, per task (labels only in val are ignored)."""
    vocab = {}
    for t in tasks:
        vocab[t] = sorted({v for r in train_records for v in r.labels.get(t, ()) if v})
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


def unseen_labels(records: list[VideoRecord], vocab: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """``{task: {label: frames}}`` of labels in ``records`` that ``vocab`` (the training split's) lacks."""
    out: dict[str, dict[str, int]] = {}
    for task, classes in vocab.items():
        known = set(classes)
        counts: dict[str, int] = {}
        for r in records:
            for v in r.labels.get(task, ()):
                if v and v not in known:
                    counts[v] = counts.get(v, 0) + 1
        if counts:
            out[task] = dict(sorted(counts.items()))
    return out
