"""Which videos train, validate and test: a ``splits.csv`` when there is one, else a seeded split.

``<root>/splits.csv`` (or the file given as ``splits``) has the columns ``video,split`` with
``split`` one of ``train|val|test`` and one row per annotated video (``video`` is the stem, or the
video's or CSV's file name). Without it the videos are split at random with a seed, keeping at
least one training video and, from two videos on, one validation video (when ``val_fraction > 0``).
Problems in the file are report rows naming its line and column; an empty validation split is a
warning.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kit.data.video import VIDEO_EXTS, DataError, _os_fix, _os_reason, problem, warning

if TYPE_CHECKING:  # kit.data.contract imports this module (validate checks the split)
    from kit.data.contract import VideoRecord

log = logging.getLogger("kit")

__all__ = ["SPLIT_NAMES", "split_records"]

SPLIT_NAMES = ("train", "val", "test")


def split_records(records: list[VideoRecord], splits: str | Path = "", val_fraction: float = 0.2,
                  test_fraction: float = 0.0, seed: int = 0, quiet: bool = False) -> dict[str, list[VideoRecord]]:
    """``{"train", "val", "test"}`` lists of records: from a splits CSV, else a seeded split by video.

    Without ``splits``, ``splits.csv`` next to the Annotations folder is used when it exists. The
    seeded split gives at least one validation video whenever there are two or more videos. An
    empty ``val`` split is logged as a warning (unless ``quiet``).
    """
    out = _split(records, splits, val_fraction, test_fraction, seed)
    if not out["val"] and records and not quiet:
        w = _no_val_warning(_splits_path(records, splits) or "the split", len(records))
        log.warning(f"[warn] {w['file']}: {w['problem']} ({w['fix']})")
    return out


def _split(records, splits, val_fraction, test_fraction, seed) -> dict[str, list[VideoRecord]]:
    path = _splits_path(records, splits)
    if path is not None:
        problems: list[dict] = []
        table = _read_splits(path, [r.stem for r in records], problems)
        if problems:
            raise DataError.of(problems)
        out = {s: [r for r in records if table[r.stem] == s] for s in SPLIT_NAMES}
        if not out["train"]:
            raise DataError.of([problem(path, "no video in the train split", "mark some videos `train`")])
        return out
    n = len(records)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n >= 2 and val_fraction > 0:
        n_val = max(1, n_val)
    if n >= 3 and test_fraction > 0:
        n_test = max(1, n_test)
    while n_val + n_test >= n > 0:  # keep a training video; give up test before val
        if n_test:
            n_test -= 1
        else:
            n_val -= 1
    order = np.random.default_rng(seed).permutation(n)  # stable across platforms (PCG64)
    which = np.array(["train"] * n, dtype=object)
    which[order[:n_val]] = "val"
    which[order[n_val:n_val + n_test]] = "test"
    return {s: [r for r, w in zip(records, which) if w == s] for s in SPLIT_NAMES}


def _splits_path(records, splits, data_root="") -> Path | None:
    if str(splits):
        return Path(splits)
    guess = (Path(data_root) if str(data_root) else
             records[0].annotation_path.parent.parent if records else None)
    return guess / "splits.csv" if guess is not None and (guess / "splits.csv").is_file() else None


def _read_splits(path: Path, stems: list[str], problems: list[dict]) -> dict[str, str]:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except OSError as e:
        problems.append(problem(path, f"cannot be read: {_os_reason(path, e)}", _os_fix(e)))
        return {}
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        problems.append(problem(path, f"not a readable CSV ({str(e).strip().splitlines()[-1]})",
                                "write a CSV with header video,split"))
        return {}
    df.columns = [str(c).strip() for c in df.columns]
    if not {"video", "split"} <= set(df.columns):
        problems.append(problem(path, f"columns {list(df.columns)}, expected video,split",
                                "name the columns `video` and `split`"))
        return {}
    table: dict[str, str] = {}
    for i, (v, s) in enumerate(zip(df["video"].str.strip(), df["split"].str.strip().str.lower())):
        stem = Path(v).stem if Path(v).suffix.lower() in VIDEO_EXTS + (".csv",) else v
        if s not in SPLIT_NAMES:
            problems.append(problem(path, f"split {s!r} for {v}", "use train, val or test", i + 2, "split"))
        elif stem not in stems:
            problems.append(problem(path, f"no annotated video named {stem!r}", "fix the name or delete the "
                                    "row", i + 2, "video"))
        elif table.get(stem, s) != s:
            problems.append(problem(path, f"{stem} is in two splits ({table[stem]}, {s})", "keep one row "
                                    "per video", i + 2, "video"))
        table.setdefault(stem, s)
    missing = [s for s in stems if s not in table]
    if missing and not problems:
        problems.append(problem(path, f"videos missing from the splits file: {missing[:10]}",
                                "add a row `<video>,train|val|test` for each", column="video"))
    return table


def _no_val_warning(where, n: int) -> dict:
    return warning(where, f"no validation video (0 of {n} videos): best.pt is chosen on the training loss and "
                   "metrics.json holds only that", "mark some videos `val` in splits.csv, or set val_fraction > 0 "
                   "(with at least 2 videos)")
