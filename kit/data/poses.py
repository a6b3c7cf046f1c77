"""Keypoints: the skeleton a video's poses follow, read from ``Poses/<stem>.npy``, CSV columns, or the
files pose estimators write (:mod:`kit.data.pose_formats`: DeepLabCut, SLEAP, OpenPose, MMPose/COCO).

A pose file ``Poses/<stem>.npy`` holds ``(L, J, 2|3)``: x, y[, score] in pixels, one row of joints
per frame; its suffix matches in any case and a stem matching a video only up to case is used with a
warning. Keypoints may instead sit in a per-frame annotation CSV as ``kp{j}_x, kp{j}_y[, kp{j}_score]``
(:mod:`kit.data.contract` reads the CSV and hands the columns here; a pose file wins when both
exist). Every source comes out as ``(L, I * J, 3)`` float32 (``I`` individuals, one for the kit's own
files) with a :class:`~kit.data.pose_formats.Skeleton`; joints with a NaN or inf, or a score below
``pose_min_score``, are missing: coordinates 0 and score 0, never an error. Problems are report rows
(``problem``/``warning``).

Legend: ``L`` frames in a video, ``I`` individuals, ``J`` joints of one individual.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from kit.data.pose_formats import PoseFileError, PoseOptions, Skeleton, pose_sources, read_pose_source
from kit.data.pose_formats.assemble import resolve_skeleton
from kit.data.pose_formats.openpose import FRAME_FILE as _FRAME_FILE
from kit.data.pose_formats.skeleton import SKELETONS
from kit.data.video import _os_fix, _os_reason, problem, warning

__all__ = ["COCO17_EDGES"]

# COCO-17 keypoints: 0 nose, 1-2 eyes, 3-4 ears, 5-6 shoulders, 7-8 elbows, 9-10 wrists,
# 11-12 hips, 13-14 knees, 15-16 ankles (left first). The official COCO skeleton, 0-based, in
# the standard drawing order (limbs first).
COCO17_EDGES: tuple[tuple[int, int], ...] = SKELETONS["coco17"][1]
_KP_COL = re.compile(r"^kp(\d+)_(x|y|score)$")


def _pose_files(pose_dir: Path, video_stems: set[str], problems: list[dict], wanted) -> dict[str, list[Path]]:
    """``{video stem: pose source}`` (a file, or OpenPose's per-frame files) of every format
    :mod:`kit.data.pose_formats` reads; a stem matching a video only up to case is used with a
    warning; a source matching no video is reported."""
    files: dict[str, list[Path]] = {}
    for stem, paths in pose_sources(pose_dir).items():
        singles = [p for p in paths if p.is_dir() or not _FRAME_FILE.match(p.name)]
        if len(singles) > 1 or (singles and len(singles) < len(paths)):
            problems.append(problem(paths[1], f"two pose sources for {stem} ({paths[0].name}, {paths[1].name})",
                                    "keep one pose file (or OpenPose folder) per video"))
        files[stem] = singles[:1] or paths
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
            problems.append(warning(p[0], f"matches video {video} only up to case: used for it",
                                    f"rename it to {video}{''.join(p[0].suffixes) or ''}"))
        elif wanted is None:
            unmatched.append(p[0])
    if unmatched:
        problems.append(warning(pose_dir, f"{len(unmatched)} pose file(s) match no video and are ignored: "
                                f"{', '.join(p.name for p in unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}",
                                "name each after its video (<video stem>.npy, <video stem>DLC_....csv, ...; "
                                "see docs/guides/poses.md)"))
    return out


def read_keypoints(paths: list[Path], stem: str, n: int, options: PoseOptions, pose_dir: Path | None,
                   problems: list[dict]) -> tuple[np.ndarray | None, Skeleton | None]:
    """``(keypoints (n, I*J, 3), skeleton)`` of one video's pose source; ``(None, None)`` after a problem."""
    p = paths[0]
    if p.is_file() and p.suffix.lower() == ".npy":
        kp, skel = own_skeleton(_read_pose(p, n, problems), options, pose_dir, p, problems)
    else:
        try:
            kp, skel = read_pose_source(paths, stem, n, options, pose_dir)
        except PoseFileError as e:
            problems.append(problem(p, e.problem, e.fix))
            return None, None
    if kp is not None and not (kp[..., 2] > 0).any():
        problems.append(warning(p, f"no joint in any frame (all NaN, or every score below pose_min_score="
                                f"{options.min_score:g}): the pose branch gets nothing from it",
                                "check that the file holds this video's poses, or lower pose_min_score"))
    return kp, skel


def own_skeleton(kp: np.ndarray | None, options: PoseOptions, pose_dir: Path | None, path: Path,
                 problems: list[dict]) -> tuple[np.ndarray | None, Skeleton | None]:
    """Keypoints of the kit's own layout ``(L, J, 3)`` with ``min_score`` applied, and their skeleton."""
    if kp is None:
        return None, None
    kp[kp[..., 2] < options.min_score] = 0.0  # low scores -> missing
    xy = np.where((kp[..., 2:] > 0), kp[..., :2], np.nan)
    try:
        skel = resolve_skeleton(kp.shape[1], None, None, "", options, pose_dir, xy)
    except PoseFileError as e:
        problems.append(problem(path, e.problem, e.fix))
        return None, None
    return kp, skel


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


def _clean_pose(a: np.ndarray) -> np.ndarray:
    """``(L, J, 2|3)`` -> ``(L, J, 3)`` float32; joints with a NaN or inf become 0, 0, score 0."""
    a = a.astype(np.float32)
    if a.shape[2] == 2:
        a = np.concatenate([a, np.ones_like(a[..., :1])], -1)  # (L, J, 3): no score = trusted
    a[~np.isfinite(a).all(-1)] = 0.0
    return a
