"""Videos, annotation CSVs and keypoints in; checked records and training windows out.

The data contract::

    <root>/Videos/<stem>.{mp4,avi,mov,mkv,webm}
    <root>/Annotations/<stem>.csv   one per video: per-frame  frame,action,...
                                    or segments   start_frame,end_frame,action,...  (end inclusive)
    <root>/Poses/<stem>.npy         optional (L, J, 2|3): x, y[, score] in pixels
    <root>/splits.csv               optional video,split (train|val|test); else a seeded split

``action`` is required; every other plain column is one more categorical task. Frames are
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

Legend: ``L`` frames in a video, ``T`` frames in a window, ``S`` frames decoded for a window,
``J`` joints, ``H = W = img_size``, ``B`` windows in a batch.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pandas as pd

from kit.data.video import DataError, note_loaded, probe_video, problem

log = logging.getLogger("kit")

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
    keypoints: np.ndarray | None = None  # (L, J, 3) float32 x, y, score; missing joints 0, 0, 0
    features_path: Path | None = None  # precomputed (D, L) features, e.g. features/<stem>.npy of the MS-TCN layout

    @property
    def tasks(self) -> list[str]:
        return list(self.labels)


# --- loading and checking ----------------------------------------------------------------------
def load_records(data_root: str | Path = "", annotations: str | Path = "", videos: str | Path = "",
                 poses: str | Path = "", stems: list[str] | None = None) -> list[VideoRecord]:
    """Every annotated video, sorted by stem; raises one :class:`DataError` listing all problems.

    Warnings (labels that would be lost without an error) are logged, one ``[warn]`` line each.

    Args:
        data_root: folder with ``Videos/``, ``Annotations/`` and optionally ``Poses/``.
        annotations, videos, poses: explicit folders, overriding those under ``data_root``.
        stems: only these videos (others are not read or probed); each must exist. None = all.
    """
    records, problems = _scan(data_root, annotations, videos, poses, stems)
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
             test_fraction: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """All problems of a dataset as a table (file, row, column, problem, fix, level); empty when clean.

    ``row`` is the line number in the file (the header is line 1), as an editor shows it.
    ``level`` is ``error`` (training refuses the data) or ``warning`` (labels that will be lost or
    ignored, with counts). ``val_fraction``, ``test_fraction`` and ``seed`` split the videos as
    training would, to warn when no video is left for validation.
    """
    records, problems = _scan(data_root, annotations, videos, poses)
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


def warning(file, problem_: str, fix: str, row: int | None = None, column: str | None = None) -> dict:
    """A report row of level ``warning``: nothing is wrong enough to stop, but labels are lost."""
    return {**problem(file, problem_, fix, row, column), "level": "warning"}


def _no_val_warning(where, n: int) -> dict:
    return warning(where, f"no validation video (0 of {n} videos): best.pt is chosen on the training loss and "
                   "metrics.json holds only that", "mark some videos `val` in splits.csv, or set val_fraction > 0 "
                   "(with at least 2 videos)")


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


def _scan(data_root, annotations, videos, poses, stems=None) -> tuple[list[VideoRecord], list[dict]]:
    problems: list[dict] = []
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
        pose_path = pose_files.get(stem)
        if pose_path is not None:
            kp = _read_pose(pose_path, meta.num_frames, problems)
        if labels is not None:
            records.append(VideoRecord(stem, vids[stem], csvs[stem], pose_path, meta.num_frames, meta.fps,
                                       meta.width, meta.height, labels, kp))
    joints = {r.keypoints.shape[1] for r in records if r.keypoints is not None}
    if len(joints) > 1:
        problems.append(problem(pose_dir or ann_dir, f"keypoints have different joint counts {sorted(joints)}",
                                "use one skeleton (the same J) for every video"))
    return records, problems


def _pose_files(pose_dir: Path, video_stems: set[str], problems: list[dict], wanted) -> dict[str, Path]:
    """``{video stem: pose file}``: ``<stem>.npy`` in any case of the suffix; a stem matching a
    video only up to case is used with a warning; a file matching no video is reported."""
    files: dict[str, Path] = {}
    for p in sorted(pose_dir.iterdir()):
        if p.suffix.lower() != ".npy" or p.name[0] == ".":
            continue
        if p.stem in files:
            problems.append(problem(p, f"two pose files for {p.stem} ({files[p.stem].name}, {p.name})",
                                    "keep one <stem>.npy per video"))
        files[p.stem] = p
    by_lower = {}
    for v in video_stems:
        by_lower.setdefault(v.lower(), []).append(v)
    out, unmatched = {}, []
    for stem, p in files.items():
        if stem in video_stems:
            out[stem] = p
        elif len(by_lower.get(stem.lower(), [])) == 1 and by_lower[stem.lower()][0] not in files:
            video = by_lower[stem.lower()][0]
            out[video] = p
            problems.append(warning(p, f"matches video {video} only up to case: used for it",
                                    f"rename it to {video}.npy"))
        elif wanted is None:
            unmatched.append(p)
    if unmatched:
        problems.append(warning(pose_dir, f"{len(unmatched)} pose file(s) match no video and are ignored: "
                                f"{', '.join(p.name for p in unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}",
                                "name each <video stem>.npy"))
    return out


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
    except OSError as e:
        problems.append(problem(path, f"cannot be read: {_os_reason(path, e)}", _os_fix(e)))
        return None
    except (ValueError, EOFError) as e:
        problems.append(problem(path, f"not a readable .npy array ({e})", fix))
        return None
    if isinstance(a, np.lib.npyio.NpzFile):  # np.load goes by content: a .npz archive saved under .npy
        keys = list(a.files)
        a.close()
        problems.append(problem(path, f"is a .npz archive (arrays {keys}), not a .npy array",
                                f"save the keypoints with numpy.save (not savez), e.g. np.save(path, archive[{keys[0]!r}])"
                                if keys else fix))
        return None
    if a.dtype.kind not in "fiu" or a.ndim != 3 or a.shape[2] not in (2, 3) or a.shape[0] != n:
        problems.append(problem(path, f"keypoints of shape {a.shape} and dtype {a.dtype}; the video has {n} "
                                "frames, so expected (num_frames, J, 2|3) = "
                                f"({n}, J, 2|3)", fix + " (pad frames without a pose with NaN)"))
        return None
    return _clean_pose(a)


def _os_reason(path: Path, e: OSError) -> str:
    if isinstance(e, IsADirectoryError) or path.is_dir():
        return "it is a folder, not a file"
    if isinstance(e, PermissionError):
        return "permission denied"
    return e.strerror or str(e)


def _os_fix(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "make it readable (e.g. chmod a+r FILE) or run as a user who may read it"
    if isinstance(e, IsADirectoryError):
        return "move the folder out, or put the file there instead"
    return "check the file and the disk it is on"


def _clean_pose(a: np.ndarray) -> np.ndarray:
    """``(L, J, 2|3)`` -> ``(L, J, 3)`` float32; joints with a NaN or inf become 0, 0, score 0."""
    a = a.astype(np.float32)
    if a.shape[2] == 2:
        a = np.concatenate([a, np.ones_like(a[..., :1])], -1)  # (L, J, 3): no score = trusted
    a[~np.isfinite(a).all(-1)] = 0.0
    return a


# --- splits and vocabularies -------------------------------------------------------------------
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
