"""Reading the layout MS-TCN, ASFormer, DiffAct, LTContext and FACT read and write.

Per dataset folder::

    features/<vid>.npy        float array (D, T): one column per frame (I3D: D = 2048)
    groundTruth/<vid>.txt     one label name per line, T lines
    mapping.txt               "<id> <name>" per line: the class list and its order (ids 0..K-1)
    splits/train.split<N>.bundle, splits/test.split<N>.bundle   one "<vid>.txt" per line
    splits/val.split<N>.bundle                                   optional (the field has none)

and, for predictions, MS-TCN's result file: the line ``### Frame level recognition: ###`` then the
frame labels separated by single spaces on one line (what its ``eval.py`` reads back with
``read().split('\\n')[1].split()``). Labels cannot contain spaces anywhere in this layout:
``mapping.txt`` and the result files are split on whitespace by every reader.

Rules of the reader (:func:`load_mstcn`, :func:`validate_mstcn`):

- Text files may use CRLF, a UTF-8 BOM and trailing blank lines; a blank line *inside* a file is a
  problem (MS-TCN's readers would take it as a label or a video named "").
- Only ``.npy`` headers are read (shape, dtype); :func:`kit.data.feature_files.load_features` reads
  one array when the trainer needs it and checks it is finite. :func:`validate_mstcn` also scans
  every array's values.
- Features (T_f columns) and ground truth (T_g lines) of different lengths: up to
  :data:`MAX_ALIGN_FRAMES` apart both are cut to the shorter, dropping the tail, as MS-TCN does
  (``batch_gen.py`` line 43, ``min(np.shape(features)[1], len(content))``), with one warning that
  counts the videos and frames; further apart is a :class:`DataError` naming both counts and the
  likely cause. DiffAct instead asserts equal lengths (``dataset.py`` line 53).

Writing the layout is :mod:`kit.data.mstcn_export` (``write_mstcn_layout``, ``kfold_splits``).

Legend: ``D`` feature width, ``T`` frames of a video (full frame rate), ``K`` classes.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from kit.data.contract import VideoRecord
from kit.data.feature_files import _finite, _npy_header
from kit.data.mstcn_text import _read_fold, _read_ground_truth, _read_mapping, _warn_unterminated
from kit.data.mstcn_text import read_mapping  # noqa: F401  (public here, as before)
from kit.data.video import DataError, problem

log = logging.getLogger("kit")

RESULT_HEADER = "### Frame level recognition: ###"
# An I3D extractor that drops the partial clip at a video's end loses up to about half a window
# (MS-TCN issue #44: 50Salads features are 8 frames shorter than the videos). More than this is a
# different video, frame rate or subsampling, never something to cut away silently.
MAX_ALIGN_FRAMES = 10
BUNDLE = re.compile(r"^(train|val|test)\.split(\d+)\.bundle$")
_COLUMNS = ["file", "row", "column", "problem", "fix"]


# --- result files ----------------------------------------------------------------------------
def write_result(path: str | Path, labels: Sequence[str]) -> None:
    """Writes one video's per-frame labels in MS-TCN's result format (labels must not contain spaces)."""
    bad = sorted({str(x) for x in labels if not str(x) or any(c.isspace() for c in str(x))})
    if bad:
        raise ValueError(f"{path}: MS-TCN's result format separates labels by spaces; these cannot be written: "
                         f"{bad[:5]}. Rename the classes (e.g. spaces to underscores)")
    Path(path).write_text(RESULT_HEADER + "\n" + " ".join(map(str, labels)))


def mstcn_labels(labels: Sequence[str]) -> list[str]:
    """Class names as MS-TCN's result file can hold them: whitespace becomes ``_``.

    Raises ``ValueError`` when two classes would become the same name (e.g. "pour milk" and "pour_milk").
    """
    labels = [str(x) for x in labels]
    renamed = {x: "_".join(x.split()) for x in set(labels)}
    clash = {}
    for old, new in renamed.items():
        clash.setdefault(new, set()).add(old)
    bad = {new: sorted(olds) for new, olds in clash.items() if len(olds) > 1}
    if bad:
        raise ValueError(f"classes {bad} all become the same name in MS-TCN's result file (spaces -> '_'): "
                         "rename one of them")
    return [renamed[x] for x in labels]


def read_result(path: str | Path) -> list[str]:
    """The per-frame labels of an MS-TCN result file (the inverse of :func:`write_result`)."""
    path = Path(path)
    lines = path.read_text().split("\n")
    if not lines or lines[0].strip() != RESULT_HEADER:
        raise DataError.of([problem(path, f"first line is {lines[0][:60]!r}, not {RESULT_HEADER!r}",
                                    "pass a file written by MS-TCN's predict() or kit predict", row=1)])
    return lines[1].split() if len(lines) > 1 else []


# --- the layout ------------------------------------------------------------------------------
def is_mstcn_layout(root: str | Path) -> bool:
    """True when ``root`` holds ``mapping.txt`` or ``groundTruth/`` and not the kit's ``Annotations/``.

    A broken MS-TCN folder (say, ``features/`` missing) still counts, so that its validation report
    names what is missing instead of the kit's layout complaining about ``Videos/``.
    """
    if not str(root):  # "" is the demo data, never the current folder
        return False
    root = Path(root)
    return (root.is_dir() and not (root / "Annotations").is_dir()
            and ((root / "mapping.txt").is_file() or (root / "groundTruth").is_dir()))


def folds_of(root: str | Path) -> list[int]:
    """The fold numbers N with a ``train.split<N>.bundle`` or ``test.split<N>.bundle``, sorted."""
    d = Path(root) / "splits"
    names = [BUNDLE.match(p.name) for p in d.iterdir()] if d.is_dir() else []
    return sorted({int(m.group(2)) for m in names if m and m.group(1) in ("train", "test")})


def load_mstcn(root: str | Path, split_index: int = 1, fps: float = 0.0,
               max_gap: int = MAX_ALIGN_FRAMES) -> tuple[list[VideoRecord], dict[str, list[VideoRecord]],
                                                          dict[str, list[str]]]:
    """The videos of one fold as records, the fold's splits and the class list.

    What MS-TCN does with ``sample_rate`` (not applied here; the trainer must): at training time it
    keeps every ``sample_rate``-th feature column and label, ``features[:, ::sample_rate]`` and
    ``classes[::sample_rate]`` after cutting both to the shorter length (``batch_gen.py`` lines
    43-47); at test time it predicts on ``features[:, ::sample_rate]`` and repeats each prediction
    ``sample_rate`` times (``model.py`` lines 106 and 115), then scores at the full frame rate
    against every ground-truth line (``eval.py`` line 121). 50Salads uses 2 (``main.py`` line 37).

    Args:
        root: the dataset folder (``features/``, ``groundTruth/``, ``mapping.txt``, ``splits/``).
        split_index: the fold N of ``splits/*.split<N>.bundle`` (1-based).
        fps: the frame rate of the features, stored in the records (0.0 = unknown).
        max_gap: the largest length difference between features and ground truth that is aligned.

    Returns:
        ``(records, splits, vocab)``: records of every video the fold names, sorted by stem, with
        ``labels={"action": [T names]}`` at the full frame rate, ``features_path`` and
        ``video_path=None``; ``splits = {"train", "val", "test"}`` lists of those records in bundle
        order (``val`` empty without a ``val.split<N>.bundle``); ``vocab = {"action": names}`` in
        ``mapping.txt`` order (the class index is the id).

    Raises:
        DataError: listing every problem (file, line, fix); :func:`validate_mstcn` gives the table.
    """
    scan = _scan(Path(root), split_index, fps, max_gap, check_values=False)
    if scan.problems:
        raise DataError.of(scan.problems)
    by_stem = {r.stem: r for r in scan.records}
    splits = {s: [by_stem[v] for v in scan.folds[split_index].get(s, [])] for s in ("train", "val", "test")}
    return scan.records, splits, {"action": scan.names}


def validate_mstcn(root: str | Path, split_index: int | None = None, check_values: bool = True,
                   max_gap: int = MAX_ALIGN_FRAMES) -> pd.DataFrame:
    """Every problem of an MS-TCN folder as a table (file, row, column, problem, fix); empty when clean.

    Args:
        split_index: check this fold only; None checks every fold and every video the bundles name.
        check_values: also read every feature array (memory-mapped, a block of rows at a time) to
            find NaN and inf; this reads the whole dataset once.
    """
    scan = _scan(Path(root), split_index, 0.0, max_gap, check_values)
    return pd.DataFrame(scan.problems, columns=_COLUMNS).astype({"row": "Int64"})


# --- the scan shared by load and validate ----------------------------------------------------
@dataclass
class _Scan:
    names: list[str]
    folds: dict[int, dict[str, list[str]]]  # N -> {"train"|"val"|"test": stems in bundle order}
    records: list[VideoRecord]
    problems: list[dict]


def _scan(root: Path, split_index: int | None, fps: float, max_gap: int, check_values: bool) -> _Scan:
    problems: list[dict] = []
    out = _Scan([], {}, [], problems)
    if not root.is_dir():
        problems.append(problem(root, "folder not found", "point data_root at the dataset folder that holds "
                                "features/, groundTruth/, mapping.txt and splits/"))
        return out
    for name, what in (("features", "one <vid>.npy (D, T) per video"), ("groundTruth", "one <vid>.txt per video, "
                       "one label per line"), ("splits", "train.split<N>.bundle and test.split<N>.bundle")):
        if not (root / name).is_dir():
            problems.append(problem(root / name, "folder not found", f"create it with {what}"))
    mapping = root / "mapping.txt"
    if mapping.is_file():
        out.names = _read_mapping(mapping, problems)
    else:
        problems.append(problem(mapping, "file not found", 'write the class list there, one "<id> <name>" '
                                "per line with ids 0..K-1"))
    if not (root / "splits").is_dir():
        return out
    folds = folds_of(root)
    if split_index is not None and split_index not in folds:
        problems.append(problem(root / "splits", f"no fold {split_index}: the folds here are {folds or 'none'}",
                                f"set split_index to one of {folds}" if folds else
                                "add train.split<N>.bundle and test.split<N>.bundle files"))
        return out
    named: dict[str, tuple[Path, int]] = {}  # stem -> the first bundle line naming it
    for n in folds if split_index is None else [split_index]:
        out.folds[n] = _read_fold(root / "splits", n, named, problems)
    if not named or not (root / "features").is_dir() or not (root / "groundTruth").is_dir():
        return out
    index = {c: k for k, c in enumerate(out.names)} if out.names else None  # None: mapping broken, labels unchecked
    gaps: list[tuple[str, int, int]] = []
    widths: dict[int, list[str]] = {}
    for stem in sorted(named):
        rec = _read_video(root, stem, named[stem], index, fps, max_gap, check_values, gaps, widths, problems)
        if rec is not None:
            out.records.append(rec)
    if len(widths) > 1:
        common = max(widths, key=lambda d: len(widths[d]))
        odd = [(d, v) for d, vs in widths.items() if d != common for v in vs]
        problems.append(problem(root / "features", f"feature widths differ: D = {common} for {len(widths[common])} "
                                f"videos, but {', '.join(f'{v}.npy has D = {d}' for d, v in odd[:5])}",
                                "extract every video with the same backbone"))
    if not problems:
        _warn_unterminated(root, out.folds, named)
    if gaps and not problems:
        worst = max(gaps, key=lambda g: abs(g[1] - g[2]))
        log.warning(f"[warn] {len(gaps)} video(s) have features and ground truth of different lengths "
                    f"({sum(abs(f - g) for _, f, g in gaps)} frames in all, at most {abs(worst[1] - worst[2])}: "
                    f"{worst[0]} has {worst[1]} feature columns and {worst[2]} labels); each is cut to the shorter, "
                    f"dropping the tail, as MS-TCN does")
    return out


def _read_video(root, stem, named_at, index, fps, max_gap, check_values, gaps, widths,
                problems) -> VideoRecord | None:
    bundle, line = named_at
    gt, feat = root / "groundTruth" / f"{stem}.txt", root / "features" / f"{stem}.npy"
    missing = [p for p in (gt, feat) if not p.is_file()]
    for p in missing:
        problems.append(problem(bundle, f"names {stem!r}, but {p.relative_to(root)} does not exist",
                                f"add {p.name}, or delete the line", row=line))
    if missing:
        return None
    labels = _read_ground_truth(gt, index, problems)
    header = _npy_header(feat, problems)
    if labels is None or header is None:
        return None
    (rows, cols), _ = header
    t_g = len(labels)
    if abs(cols - t_g) > max_gap and abs(rows - t_g) <= max_gap:
        problems.append(problem(feat, f"shape ({rows}, {cols}) looks transposed: {gt.name} has {t_g} lines, so "
                                f"this is (T, D) = ({rows}, {cols}), not (D, T)",
                                "save features.T: one column per frame, shape (D, T)"))
        return None
    if abs(cols - t_g) > max_gap:
        problems.append(problem(feat, f"{cols} frames (columns of the (D, T) = ({rows}, {cols}) array), but "
                                f"{gt.name} has {t_g} lines: {_likely_cause(cols, t_g)}",
                                f"make both one per frame of the same video (up to {max_gap} frames apart "
                                "are aligned)"))
        return None
    if check_values and not _finite(feat, problems):
        return None
    n = min(cols, t_g)
    widths.setdefault(rows, []).append(stem)
    if cols != t_g:
        gaps.append((stem, cols, t_g))
    return VideoRecord(stem, None, gt, None, n, float(fps), 0, 0, {"action": labels[:n]}, None, feat)


def _likely_cause(t_f: int, t_g: int) -> str:
    ratio = t_g / max(t_f, 1)
    for k, what in ((ratio, "features"), (1 / max(ratio, 1e-9), "ground truth")):
        if k >= 1.9 and abs(k - round(k)) < 0.05 * k:
            return (f"the {what} look subsampled by {round(k)} (the layout keeps both at the full frame rate; "
                    "subsample with sample_rate instead)")
    return "features of another video, another frame rate, or an extraction that stopped early"
