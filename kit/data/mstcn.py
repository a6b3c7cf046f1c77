"""The layout MS-TCN, ASFormer, DiffAct, LTContext and FACT read and write.

Per dataset folder::

    features/<vid>.npy        float array (D, T): one column per frame
    groundTruth/<vid>.txt     one label name per line, T lines
    mapping.txt               "<id> <name>" per line: the class list and its order
    splits/train.split<N>.bundle, splits/test.split<N>.bundle   one "<vid>.txt" per line

and, for predictions, MS-TCN's result file: the line ``### Frame level recognition: ###`` then the
frame labels separated by single spaces on one line (what its ``eval.py`` reads back with
``read().split('\\n')[1].split()``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from kit.data.video import DataError, problem

RESULT_HEADER = "### Frame level recognition: ###"


def write_result(path: str | Path, labels: Sequence[str]) -> None:
    """Writes one video's per-frame labels in MS-TCN's result format (labels must not contain spaces)."""
    bad = sorted({str(x) for x in labels if not str(x) or any(c.isspace() for c in str(x))})
    if bad:
        raise ValueError(f"{path}: MS-TCN's result format separates labels by spaces; these cannot be written: "
                         f"{bad[:5]}. Rename the classes (e.g. spaces to underscores)")
    Path(path).write_text(RESULT_HEADER + "\n" + " ".join(map(str, labels)))


def read_result(path: str | Path) -> list[str]:
    """The per-frame labels of an MS-TCN result file (the inverse of :func:`write_result`)."""
    path = Path(path)
    lines = path.read_text().split("\n")
    if not lines or lines[0].strip() != RESULT_HEADER:
        raise DataError.of([problem(path, f"first line is {lines[0][:60]!r}, not {RESULT_HEADER!r}",
                                    "pass a file written by MS-TCN's predict() or kit predict", row=1)])
    return lines[1].split() if len(lines) > 1 else []
