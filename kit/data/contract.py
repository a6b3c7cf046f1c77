"""Videos, annotation CSVs and keypoints in; checked records and training windows out.

The data contract::

    <root>/Videos/<stem>.{mp4,avi,mov,mkv,webm}
    <root>/Annotations/<stem>.csv   one per video: per-frame  frame,action,...
                                    or segments   start_frame,end_frame,action,...  (end inclusive)
    <root>/Poses/<stem>.npy         optional (L, J, 2|3): x, y[, score] in pixels
    <root>/splits.csv               optional video,split (train|val|test); else a seeded split

``action`` is required; every other plain column is one more categorical task. A task is
multi-label (behaviours that overlap, one sigmoid each) when a cell holds several labels joined by
``|`` (``groom|rear``) or ``-`` (labelled: none of the behaviours); binary columns
``<task>:<behaviour>`` holding 0/1 are read as the same thing (``behaviour:groom=1,
behaviour:rear=1`` is ``behaviour=groom|rear``, all 0 is ``-``, all empty unlabeled). Frames are
numbered from 0. Empty cells (and ``nan``/``None``/``null``/``NA``/``N/A``/``#N/A``, counted in a
warning), frames a CSV does not mention and gaps between segments are unlabeled: ``IGNORE_INDEX``
for the loss and the metrics. Keypoints may instead sit in a per-frame CSV as ``kp{j}_x, kp{j}_y
[, kp{j}_score]`` (a ``Poses/<stem>.npy`` wins when both exist). Joints with a NaN are missing:
coordinates 0 and score 0, never an error.

Every problem is reported as a :class:`DataError` naming the file, the line or column, and the
fix; :func:`validate` collects them all as a table instead. Things that lose labels silently
without being wrong (few labeled frames, ``NA`` cells, pose files matched only up to case, no
validation video) are warnings: logged by :func:`load_records`, rows of level ``warning`` in
:func:`validate`. Folder names ``Videos``/``Annotations``/``Poses`` and the ``.npy`` suffix match in
any case. Nothing here writes to user files.

This module scans the folders, reads the annotation CSVs and builds the :class:`VideoRecord` list;
the rest has its own module: :mod:`kit.data.poses` (keypoints), :mod:`kit.data.splits`
(train/val/test) and :mod:`kit.data.labels` (vocabularies, ``IGNORE_INDEX``, ``UNSEEN``).

Legend: ``L`` frames in a video, ``T`` frames in a window, ``S`` frames decoded for a window,
``J`` joints, ``H = W = img_size``, ``B`` windows in a batch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pandas as pd

from kit.data.pose_formats import PoseOptions, Skeleton
from kit.data.pose_formats.assemble import unify
from kit.data.poses import _KP_COL, _csv_keypoints, _pose_files, own_skeleton, read_keypoints
from kit.data.splits import _no_val_warning, _read_splits, _splits_path, split_records
from kit.data.video import VIDEO_EXTS, DataError, _os_fix, _os_reason, note_loaded, probe_video, problem, warning

log = logging.getLogger("kit")

__all__ = ["DataError", "VideoRecord", "load_records", "validate"]

_FRAME_COLS = ("frame", "start_frame", "end_frame")
_UNLABELED = {"", "nan", "none", "null", "na", "n/a", "#n/a"}  # compared lower-case; spreadsheets' "no label"
MIN_LABELED = 0.5  # warn when a CSV gives an action to fewer than this share of its video's frames


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
    keypoints: np.ndarray | None = None  # (L, I*J, 3) float32 x, y, score; missing joints 0, 0, 0
    features_path: Path | None = None  # precomputed (D, L) features, e.g. features/<stem>.npy of the MS-TCN layout
    skeleton: Skeleton | None = None  # the keypoints' joints, edges and individuals (kit.data.pose_formats)

    @property
    def tasks(self) -> list[str]:
        return list(self.labels)


# --- loading and checking ----------------------------------------------------------------------
def load_records(data_root: str | Path = "", annotations: str | Path = "", videos: str | Path = "",
                 poses: str | Path = "", stems: list[str] | None = None,
                 pose_options: PoseOptions | None = None) -> list[VideoRecord]:
    """Every annotated video, sorted by stem; raises one :class:`DataError` listing all problems.

    Warnings (labels that would be lost without an error) are logged, one ``[warn]`` line each.

    Args:
        data_root: folder with ``Videos/``, ``Annotations/`` and optionally ``Poses/``.
        annotations, videos, poses: explicit folders, overriding those under ``data_root``.
        stems: only these videos (others are not read or probed); each must exist. None = all.
    """
    records, problems = _scan(data_root, annotations, videos, poses, stems, pose_options)
    errors = [p for p in problems if p.get("level", "error") == "error"]
    if errors:
        raise DataError.of(errors)
    for p in problems:
        where = ", ".join([p["file"]] + [f"line {p['row']}"] * (p["row"] is not None)
                          + [f"column {p['column']!r}"] * (p["column"] is not None))
        log.warning(f"[warn] {where}: {p['problem']} ({p['fix']})")
    return records


def validate(data_root: str | Path = "", annotations: str | Path = "", videos: str | Path = "",
             poses: str | Path = "", splits: str | Path = "", val_fraction: float = 0.2,
             test_fraction: float = 0.0, seed: int = 0, pose_options: PoseOptions | None = None) -> pd.DataFrame:
    """All problems of a dataset as a table (file, row, column, problem, fix, level); empty when clean.

    ``row`` is the line number in the file (the header is line 1), as an editor shows it.
    ``level`` is ``error`` (training refuses the data) or ``warning`` (labels that will be lost or
    ignored, with counts). ``val_fraction``, ``test_fraction`` and ``seed`` split the videos as
    training would, to warn when no video is left for validation.
    """
    records, problems = _scan(data_root, annotations, videos, poses, pose_options=pose_options)
    path = _splits_path(records, splits, data_root)
    clean = not any(p.get("level", "error") == "error" for p in problems)
    if path is not None and clean:
        _read_splits(path, [r.stem for r in records], problems)
    if records and not any(p.get("level", "error") == "error" for p in problems):
        val = split_records(records, splits, val_fraction, test_fraction, seed, quiet=True)["val"]
        if not val:
            problems.append(_no_val_warning(path or data_root or annotations, len(records)))
    rows = sorted(({**p, "level": p.get("level", "error")} for p in problems), key=lambda p: p["level"] != "error")
    report = pd.DataFrame(rows, columns=["file", "row", "column", "problem", "fix", "level"])
    return report.astype({"row": "Int64"})  # line numbers, <NA> where a problem has none


def _subdir(root: Path | None, name: str, problems: list[dict]) -> Path | None:
    """``root/name``, or its one differently-cased twin (``videos/``); None without a root."""
    if root is None:
        return None
    exact = root / name
    try:
        twins = sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower() == name.lower() and p.name != name)
    except OSError:
        return exact
    if exact.is_dir():
        for t in twins:
            problems.append(warning(t, f"folder differs from {name}/ only in case: it is ignored, {name}/ is read",
                                    f"merge it into {name}/"))
        return exact
    if len(twins) > 1:
        problems.append(problem(root, f"folders {', '.join(t.name for t in twins)} differ only in case",
                                f"keep one folder named {name}"))
    return twins[0] if twins else exact


def _scan(data_root, annotations, videos, poses, stems=None, pose_options=None) -> tuple[list[VideoRecord], list[dict]]:
    problems: list[dict] = []
    options = pose_options or PoseOptions()
    root = Path(data_root) if str(data_root) else None
    ann_dir = Path(annotations) if str(annotations) else _subdir(root, "Annotations", problems)
    vid_dir = Path(videos) if str(videos) else _subdir(root, "Videos", problems)
    pose_dir = Path(poses) if str(poses) else _subdir(root, "Poses", problems)
    if pose_dir is not None and not str(poses) and not pose_dir.is_dir():
        pose_dir = None  # Poses/ is optional
    if ann_dir is None or vid_dir is None:
        return [], [problem("", "no data given", "pass data_root (a folder with Videos/ and "
                            "Annotations/), or both annotations and videos folders")]
    for d, what in ((ann_dir, "annotations"), (vid_dir, "videos"), (pose_dir, "poses")):
        if d is not None and not d.is_dir():
            found = "is a file, not a folder" if d.exists() else "folder not found"
            problems.append(problem(d, found, f"create it or point `{what}`/`data_root` "
                                    "at the folder that holds the files"))
    if any(p.get("level", "error") == "error" for p in problems):
        return [], problems
    wanted = None if stems is None else set(stems)
    csvs = {p.stem: p for p in sorted(ann_dir.iterdir()) if p.suffix.lower() == ".csv" and p.name[0] != "."
            and (wanted is None or p.stem in wanted)}
    vids: dict[str, Path] = {}
    for p in sorted(vid_dir.iterdir()):
        if p.suffix.lower() in VIDEO_EXTS and p.name[0] != "." and (wanted is None or p.stem in wanted):
            if p.stem in vids:
                problems.append(problem(p, f"two videos named {p.stem} ({vids[p.stem].name}, {p.name})",
                                        "keep one video per stem"))
            vids[p.stem] = p
    pose_files = _pose_files(pose_dir, set(vids), problems, wanted) if pose_dir is not None else {}
    if wanted is not None:
        for stem in sorted(wanted - set(csvs)):
            problems.append(problem(ann_dir / f"{stem}.csv", "not found (the run uses this video)",
                                    "restore the annotation CSV, or point data_root at the data the run was trained on"))
        for stem in sorted(wanted - set(vids)):
            problems.append(problem(vid_dir / f"{stem}.{{mp4,avi,mov,mkv,webm}}", "video not found (the run uses it)",
                                    "restore the video, or point data_root at the data the run was trained on"))
    elif not csvs:
        problems.append(problem(ann_dir, "no annotation CSVs (*.csv) in this folder",
                                "put one <stem>.csv per video there (frame,action,... per frame)"))
    if wanted is None:
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
        note_loaded(vids[stem])  # a change to the file after this point is an error when it is read
        labels, kp = _read_annotation(csvs[stem], meta, problems)
        kp, skel = own_skeleton(kp, options, pose_dir, csvs[stem], problems)
        source = pose_files.get(stem)
        pose_path = source[0] if source else None
        if source is not None:
            kp, skel = read_keypoints(source, stem, meta.num_frames, options, pose_dir, problems)
        if labels is not None:
            records.append(VideoRecord(stem, vids[stem], csvs[stem], pose_path, meta.num_frames, meta.fps,
                                       meta.width, meta.height, labels, kp, skeleton=skel))
    joints = {r.skeleton.num_joints if r.skeleton else r.keypoints.shape[1] for r in records if r.keypoints is not None}
    if len(joints) > 1:
        problems.append(problem(pose_dir or ann_dir, f"keypoints have different joint counts {sorted(joints)}",
                                "use one skeleton (the same J) for every video"))
    else:
        unify(records, pose_dir, problems)
    return records, problems


def _read_annotation(path: Path, meta, problems: list[dict]):
    """Per-frame labels ``{task: [L str]}`` and CSV keypoints ``(L, J, 3)`` or None; None on error."""
    n = meta.num_frames
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        header = pd.read_csv(path, dtype=str, keep_default_na=False, header=None, nrows=1).iloc[0].tolist()
    except OSError as e:
        problems.append(problem(path, f"cannot be read: {_os_reason(path, e)}", _os_fix(e)))
        return None, None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        problems.append(problem(path, f"not a readable CSV ({str(e).strip().splitlines()[-1]})",
                                "save it as comma-separated UTF-8 text with one header row, e.g. frame,action"))
        return None, None
    df.columns = [str(c).strip() for c in df.columns]
    cols = list(df.columns)
    before = len(problems)
    names = [str(c).strip() for c in header]
    for name in dict.fromkeys(c for c in names if names.count(c) > 1):
        at = [i + 1 for i, c in enumerate(names) if c == name]
        problems.append(problem(path, f"column {name!r} appears {len(at)} times (columns {at}): pandas would "
                                f"read the copies as a separate task {name + '.1'!r}", "remove or rename the "
                                "duplicate column", 1, name))
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
    df = _binary_columns(df, path, problems)
    if df is None:
        return None, None
    cols = list(df.columns)
    tasks = ["action"] + [c for c in cols if c not in _FRAME_COLS and c != "action"
                          and not _KP_COL.match(c) and not c.startswith("Unnamed:")]
    labels, na = {}, {}
    for t in tasks:
        raw = [v.strip() for v in df[t].astype(str)]
        values = [v if v.lower() not in _UNLABELED else "" for v in raw]
        na[t] = [i for i, v in enumerate(raw) if v and not values[i]]
        arr = np.full(n, "", dtype=object)
        if segments:
            for v, a, b in zip(values, ints["start_frame"], ints["end_frame"]):
                arr[a:b + 1] = v
        else:
            arr[ints["frame"]] = values
        labels[t] = arr.tolist()
    if any(na.values()):
        first = min(i for rows in na.values() for i in rows)
        shown = sorted({df[t].iloc[i].strip() for t, rows in na.items() for i in rows})
        per = ", ".join(f"{t}: {len(rows)}" for t, rows in na.items() if rows)
        problems.append(warning(path, f"{sum(map(len, na.values()))} label cell(s) hold {', '.join(map(repr, shown))} "
                                f"({per}; first on line {first + 2}): treated as unlabeled", "leave the cell empty "
                                "for an unlabeled frame, or write the class name", first + 2))
    k = sum(1 for v in labels["action"] if v)
    if k < MIN_LABELED * n:
        problems.append(warning(path, f"gives an action to {k} of the video's {n} frames ({100 * k / n:.0f}%); the "
                                f"other {n - k} are unlabeled and ignored by the loss and the metrics",
                                "if the CSV should cover the whole video, add the missing rows (frames count from "
                                "0) or check that it belongs to this video", column="action"))
    kp_cols = [c for c in cols if _KP_COL.match(c)]
    kp = _csv_keypoints(df, kp_cols, None if segments else ints["frame"], n, path, problems) if kp_cols else None
    return labels, kp


def _binary_columns(df: pd.DataFrame, path: Path, problems: list[dict]) -> pd.DataFrame | None:
    """Columns ``<task>:<behaviour>`` of 0/1 folded into one multi-label column ``<task>`` of
    ``groom|rear`` / ``-`` (all 0) / ``""`` (all empty); None (and a problem) on a bad cell."""
    groups: dict[str, list[str]] = {}
    for c in df.columns:
        task, sep, beh = c.partition(":")
        if sep and task.strip() and beh.strip():
            groups.setdefault(task.strip(), []).append(c)
    if not groups:
        return df
    df = df.copy()
    for task, cs in groups.items():
        if task in df.columns:
            problems.append(problem(path, f"column {task!r} and binary columns {task}:<behaviour> both given",
                                    f"keep either the {task} column or its {task}:<behaviour> columns", 1, task))
            return None
        cells = df[cs].apply(lambda col: col.str.strip())
        bad = ~cells.isin(["0", "1", ""])
        if bad.to_numpy().any():
            i, j = np.argwhere(bad.to_numpy())[0]
            problems.append(problem(path, f"binary column {cs[j]!r} holds {cells.iat[i, j]!r}", "write 1 (the "
                                    "behaviour happens), 0 (it does not) or leave the cell empty (unlabeled)",
                                    int(i) + 2, cs[j]))
            return None
        names = [c.partition(":")[2].strip() for c in cs]
        on = cells.to_numpy() == "1"  # (rows, behaviours)
        empty = (cells.to_numpy() == "").all(1)
        df[task] = ["" if e else "|".join(n for n, o in zip(names, row) if o) or "-" for row, e in zip(on, empty)]
        df = df.drop(columns=cs)
    return df


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


