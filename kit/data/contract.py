"""Videos, annotation CSVs and keypoints in; checked records and training windows out.

The data contract::

    <root>/Videos/<stem>.{mp4,avi,mov,mkv,webm}
    <root>/Annotations/<stem>.csv   one per video: per-frame  frame,action,...
                                    or segments   start_frame,end_frame,action,...  (end inclusive)
    <root>/Poses/<stem>.npy         optional (L, J, 2|3): x, y[, score] in pixels
    <root>/splits.csv               optional video,split (train|val|test); else a seeded split

``action`` is required; every other plain column is one more categorical task. Frames are
numbered from 0. Empty cells (and ``nan``/``None``/``null``), frames a CSV does not mention and
gaps between segments are unlabeled: ``IGNORE_INDEX`` for the loss and the metrics. Keypoints may instead sit in a per-frame CSV as ``kp{j}_x, kp{j}_y
[, kp{j}_score]`` (a ``Poses/<stem>.npy`` wins when both exist). Joints with a NaN are missing:
coordinates 0 and score 0, never an error.

Every problem is reported as a :class:`DataError` naming the file, the line or column, and the
fix; :func:`validate` collects them all as a table instead. Nothing here writes to user files.

Legend: ``L`` frames in a video, ``T`` frames in a window, ``S`` frames decoded for a window,
``J`` joints, ``H = W = img_size``, ``B`` windows in a batch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pandas as pd

from kit.data.video import DataError, probe_video, problem

__all__ = ["IGNORE_INDEX", "COCO17_EDGES", "VIDEO_EXTS", "DataError", "VideoRecord", "load_records", "validate",
           "split_records", "build_vocab", "tasks_of", "encode_labels", "unseen_labels", "UNSEEN"]

IGNORE_INDEX = -100  # torch's cross-entropy default: unlabeled
UNSEEN = -1  # a label the training split never had: skipped by the loss, an error for the metrics
# COCO-17 keypoints: 0 nose, 1-2 eyes, 3-4 ears, 5-6 shoulders, 7-8 elbows, 9-10 wrists,
# 11-12 hips, 13-14 knees, 15-16 ankles (left first). The official COCO skeleton, 0-based, in
# the standard drawing order (limbs first).
COCO17_EDGES: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
SPLIT_NAMES = ("train", "val", "test")
_FRAME_COLS = ("frame", "start_frame", "end_frame")
_KP_COL = re.compile(r"^kp(\d+)_(x|y|score)$")
_UNLABELED = {"", "nan", "none", "null"}  # compared lower-case; what spreadsheets write for "no label"


@dataclass
class VideoRecord:
    """One annotated video, checked against the contract."""

    stem: str
    video_path: Path | None  # None for a dataset given as features (the MS-TCN layout)
    annotation_path: Path | None  # None for a video to label (kit.data.inputs)
    pose_path: Path | None
    num_frames: int
    fps: float
    width: int
    height: int
    labels: dict[str, list[str]]  # task -> L label strings, "" = unlabeled; "action" first
    keypoints: np.ndarray | None = None  # (L, J, 3) float32 x, y, score; missing joints 0, 0, 0
    features_path: Path | None = None  # precomputed (D, L) features, e.g. features/<stem>.npy of the MS-TCN layout

    @property
    def tasks(self) -> list[str]:
        return list(self.labels)


# --- loading and checking ----------------------------------------------------------------------
def load_records(data_root: str | Path = "", annotations: str | Path = "", videos: str | Path = "",
                 poses: str | Path = "") -> list[VideoRecord]:
    """Every annotated video, sorted by stem; raises one :class:`DataError` listing all problems.

    Args:
        data_root: folder with ``Videos/``, ``Annotations/`` and optionally ``Poses/``.
        annotations, videos, poses: explicit folders, overriding those under ``data_root``.
    """
    records, problems = _scan(data_root, annotations, videos, poses)
    if problems:
        raise DataError.of(problems)
    return records


def validate(data_root: str | Path = "", annotations: str | Path = "", videos: str | Path = "",
             poses: str | Path = "", splits: str | Path = "") -> pd.DataFrame:
    """All problems of a dataset as a table (file, row, column, problem, fix); empty when clean.

    ``row`` is the line number in the file (the header is line 1), as an editor shows it.
    """
    records, problems = _scan(data_root, annotations, videos, poses)
    path = _splits_path(records, splits, data_root)
    if path is not None and not problems:
        _read_splits(path, [r.stem for r in records], problems)
    report = pd.DataFrame(problems, columns=["file", "row", "column", "problem", "fix"])
    return report.astype({"row": "Int64"})  # line numbers, <NA> where a problem has none


def _scan(data_root, annotations, videos, poses) -> tuple[list[VideoRecord], list[dict]]:
    problems: list[dict] = []
    root = Path(data_root) if str(data_root) else None
    ann_dir = Path(annotations) if str(annotations) else root / "Annotations" if root else None
    vid_dir = Path(videos) if str(videos) else root / "Videos" if root else None
    pose_dir = Path(poses) if str(poses) else root / "Poses" if root and (root / "Poses").is_dir() else None
    if ann_dir is None or vid_dir is None:
        return [], [problem("", "no data given", "pass data_root (a folder with Videos/ and "
                            "Annotations/), or both annotations and videos folders")]
    for d, what in ((ann_dir, "annotations"), (vid_dir, "videos"), (pose_dir, "poses")):
        if d is not None and not d.is_dir():
            problems.append(problem(d, "folder not found", f"create it or point `{what}`/`data_root` "
                                    "at the folder that holds the files"))
    if problems:
        return [], problems
    csvs = {p.stem: p for p in sorted(ann_dir.iterdir()) if p.suffix.lower() == ".csv" and p.name[0] != "."}
    vids: dict[str, Path] = {}
    for p in sorted(vid_dir.iterdir()):
        if p.suffix.lower() in VIDEO_EXTS and p.name[0] != ".":
            if p.stem in vids:
                problems.append(problem(p, f"two videos named {p.stem} ({vids[p.stem].name}, {p.name})",
                                        "keep one video per stem"))
            vids[p.stem] = p
    if not csvs:
        problems.append(problem(ann_dir, "no annotation CSVs (*.csv) in this folder",
                                "put one <stem>.csv per video there (frame,action,... per frame)"))
    for stem in sorted(set(csvs) - set(vids)):
        problems.append(problem(csvs[stem], f"no video for this CSV (no {stem}.{{mp4,avi,mov,mkv,webm}} "
                                f"in {vid_dir})", "add the video, or move the CSV out of the folder"))
    for stem in sorted(set(vids) - set(csvs)):
        problems.append(problem(vids[stem], "no annotation CSV for this video",
                                f"add {ann_dir / (stem + '.csv')}, or move the video out of {vid_dir}"))
    records = []
    for stem in sorted(set(csvs) & set(vids)):
        try:
            meta = probe_video(vids[stem])
        except DataError as e:
            problems.extend(e.problems)
            continue
        labels, kp = _read_annotation(csvs[stem], meta, problems)
        pose_path = pose_dir / f"{stem}.npy" if pose_dir is not None else None
        if pose_path is not None and pose_path.is_file():
            kp = _read_pose(pose_path, meta.num_frames, problems)
        else:
            pose_path = None
        if labels is not None:
            records.append(VideoRecord(stem, vids[stem], csvs[stem], pose_path, meta.num_frames, meta.fps,
                                       meta.width, meta.height, labels, kp))
    joints = {r.keypoints.shape[1] for r in records if r.keypoints is not None}
    if len(joints) > 1:
        problems.append(problem(pose_dir or ann_dir, f"keypoints have different joint counts {sorted(joints)}",
                                "use one skeleton (the same J) for every video"))
    return records, problems


def _read_annotation(path: Path, meta, problems: list[dict]):
    """Per-frame labels ``{task: [L str]}`` and CSV keypoints ``(L, J, 3)`` or None; None on error."""
    n = meta.num_frames
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        problems.append(problem(path, f"not a readable CSV ({str(e).strip().splitlines()[-1]})",
                                "save it as comma-separated UTF-8 text with one header row, e.g. frame,action"))
        return None, None
    df.columns = [str(c).strip() for c in df.columns]
    cols = list(df.columns)
    before = len(problems)
    if "action" not in cols:
        sep = " (and save it comma-separated: it looks like ; or tab separators)" if any(
            ";" in c or "\t" in c for c in cols) else ""
        problems.append(problem(path, f"no `action` column (columns: {', '.join(cols)})", "add an `action` "
                                "column: frame,action,... per frame or start_frame,end_frame,action,..." + sep,
                                column="action"))
    segments = "start_frame" in cols and "end_frame" in cols
    if not segments and "frame" not in cols:
        problems.append(problem(path, "no frame column", "name the frame column `frame` (per-frame CSV) or "
                                "give `start_frame,end_frame` (segment CSV)", column="frame"))
    if len(df) == 0:
        problems.append(problem(path, "no rows", "add one row per frame or per segment"))
    if len(problems) > before:
        return None, None
    frame_cols = ("start_frame", "end_frame") if segments else ("frame",)
    ints = {c: _frame_numbers(df[c], path, c, n, meta, problems) for c in frame_cols}
    if any(v is None for v in ints.values()):
        return None, None
    lines = np.arange(len(df)) + 2  # header is line 1
    if segments:
        s, e = ints["start_frame"], ints["end_frame"]
        for i in np.flatnonzero(s > e):
            problems.append(problem(path, f"segment ends before it starts ({s[i]} > {e[i]})",
                                    "swap start_frame and end_frame (end is inclusive)", lines[i], "end_frame"))
        order = np.argsort(s, kind="stable")
        reach = -1
        prev = None
        for i in order:
            if s[i] <= reach:
                problems.append(problem(path, f"segment {s[i]}-{e[i]} overlaps segment {s[prev]}-{e[prev]} "
                                        f"on line {lines[prev]}", "make segments disjoint (end_frame is "
                                        "inclusive, so the next segment starts at end_frame + 1)", lines[i]))
            if e[i] > reach:
                reach, prev = e[i], i
    else:
        f = ints["frame"]
        dup = pd.Series(f).duplicated(keep=False).to_numpy()
        if dup.any():
            first = np.flatnonzero(dup)[:6]
            problems.append(problem(path, f"duplicate frame numbers {sorted(set(f[first].tolist()))} on lines "
                                    f"{lines[first].tolist()}", "keep one row per frame", lines[first[0]], "frame"))
    if len(problems) > before:
        return None, None
    tasks = ["action"] + [c for c in cols if c not in _FRAME_COLS and c != "action"
                          and not _KP_COL.match(c) and not c.startswith("Unnamed:")]
    labels = {}
    for t in tasks:
        values = [v.strip() if v.strip().lower() not in _UNLABELED else "" for v in df[t].astype(str)]
        arr = np.full(n, "", dtype=object)
        if segments:
            for v, a, b in zip(values, ints["start_frame"], ints["end_frame"]):
                arr[a:b + 1] = v
        else:
            arr[ints["frame"]] = values
        labels[t] = arr.tolist()
    kp_cols = [c for c in cols if _KP_COL.match(c)]
    kp = _csv_keypoints(df, kp_cols, None if segments else ints["frame"], n, path, problems) if kp_cols else None
    return labels, kp


def _frame_numbers(col: pd.Series, path: Path, name: str, n: int, meta, problems: list[dict]) -> np.ndarray | None:
    """The column as int64 (None if not all integers); adds a problem for each kind of bad value."""
    num = pd.to_numeric(col.str.strip(), errors="coerce").to_numpy(dtype=float)
    lines = np.arange(len(col)) + 2
    bad = np.flatnonzero(~np.isfinite(num) | (num % 1 != 0))
    if len(bad):
        problems.append(problem(path, f"{name} values that are not whole numbers: "
                                f"{[col.iloc[i] for i in bad[:5]]} on lines {lines[bad[:5]].tolist()}",
                                "write frame numbers as integers counted from 0", lines[bad[0]], name))
        return None
    neg = np.flatnonzero(num < 0)
    if len(neg):
        problems.append(problem(path, f"negative {name} {int(num[neg[0]])} on lines {lines[neg[:5]].tolist()}",
                                "frame numbers start at 0", lines[neg[0]], name))
    past = np.flatnonzero(num >= n)
    if len(past):
        hint = f" (its header claims {meta.header_frames}: truncated?)" if meta.header_frames > n else ""
        problems.append(problem(path, f"{name} {int(num[past[0]])} on line {lines[past[0]]} is past the "
                                f"video's end: it has {n} frames (0-{n - 1}){hint}",
                                "check that frames count from 0 and that the CSV belongs to this video",
                                lines[past[0]], name))
    return num.astype(np.int64)


def _csv_keypoints(df, kp_cols, frames, n, path, problems) -> np.ndarray | None:
    """``(L, J, 3)`` from ``kp{j}_x, kp{j}_y[, kp{j}_score]`` columns of a per-frame CSV."""
    if frames is None:
        problems.append(problem(path, "keypoint columns in a segment CSV", "put keypoints in a per-frame CSV "
                                "or in Poses/<stem>.npy", column=kp_cols[0]))
        return None
    joints = sorted({int(_KP_COL.match(c).group(1)) for c in kp_cols})
    J = len(joints)
    missing = [f"kp{j}_{a}" for j in range(J) for a in "xy" if f"kp{j}_{a}" not in df.columns]
    if joints != list(range(J)) or missing:
        problems.append(problem(path, f"keypoint columns incomplete (joints {joints}, missing {missing})",
                                "give kp{j}_x and kp{j}_y for every joint j = 0..J-1", column=kp_cols[0]))
        return None
    out = np.full((n, J, 3), np.nan, np.float32)
    for j in range(J):
        for a, name in enumerate(("x", "y", "score")):
            c = f"kp{j}_{name}"
            if c not in df.columns:
                out[frames, j, a] = 1.0  # no score column: every given joint is trusted
                continue
            raw = df[c].str.strip()
            num = pd.to_numeric(raw, errors="coerce")
            bad = np.flatnonzero(num.isna().to_numpy() & (raw != "").to_numpy())
            if len(bad):
                problems.append(problem(path, f"non-numeric keypoint {raw.iloc[bad[0]]!r}", "write numbers, "
                                        "or leave the cell empty for a missing joint", bad[0] + 2, c))
                return None
            out[frames, j, a] = num.to_numpy(dtype=np.float32)
    return _clean_pose(out)


def _read_pose(path: Path, n: int, problems: list[dict]) -> np.ndarray | None:
    fix = f"save a float array of shape ({n}, J, 2 or 3) with numpy.save: one row of joints per frame"
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        problems.append(problem(path, f"not a readable .npy array ({e})", fix))
        return None
    if a.dtype.kind not in "fiu" or a.ndim != 3 or a.shape[2] not in (2, 3) or a.shape[0] != n:
        problems.append(problem(path, f"keypoints of shape {a.shape} and dtype {a.dtype}; the video has {n} "
                                "frames, so expected (num_frames, J, 2|3) = "
                                f"({n}, J, 2|3)", fix + " (pad frames without a pose with NaN)"))
        return None
    return _clean_pose(a)


def _clean_pose(a: np.ndarray) -> np.ndarray:
    """``(L, J, 2|3)`` -> ``(L, J, 3)`` float32; joints with a NaN or inf become 0, 0, score 0."""
    a = a.astype(np.float32)
    if a.shape[2] == 2:
        a = np.concatenate([a, np.ones_like(a[..., :1])], -1)  # (L, J, 3): no score = trusted
    a[~np.isfinite(a).all(-1)] = 0.0
    return a


# --- splits and vocabularies -------------------------------------------------------------------
def split_records(records: list[VideoRecord], splits: str | Path = "", val_fraction: float = 0.2,
                  test_fraction: float = 0.0, seed: int = 0) -> dict[str, list[VideoRecord]]:
    """``{"train", "val", "test"}`` lists of records: from a splits CSV, else a seeded split by video.

    Without ``splits``, ``splits.csv`` next to the Annotations folder is used when it exists. The
    seeded split gives at least one validation video whenever there are two or more videos.
    """
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
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
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
