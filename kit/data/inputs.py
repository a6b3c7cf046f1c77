"""Videos to label: files or folders of videos nobody annotated, as records without labels.

``video_records(["clip.mp4", "more/"], poses="kp/")`` gives one :class:`~kit.data.contract.VideoRecord`
per video (folders: every ``.mp4 .avi .mov .mkv .webm`` in it, sorted, not recursive), its
keypoints from its pose file in ``poses`` (``<stem>.npy`` or another tool's format) when there is one, and no labels. A record's ``stem``
names its outputs: two videos with the same stem (``test.avi``, ``test.mp4``) become ``test_avi``
and ``test_mp4``. Every problem (a missing path, a file that is not a video, names that still clash,
a bad keypoint file) is reported at once as one :class:`~kit.data.video.DataError` naming the files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from kit.data.contract import VideoRecord
from kit.data.pose_formats import PoseOptions
from kit.data.pose_formats.assemble import unify
from kit.data.poses import _pose_files, read_keypoints
from kit.data.video import VIDEO_EXTS, DataError, probe_video, problem


def video_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The video files named by ``paths`` (files, or folders of videos), in order, each once."""
    out: list[Path] = []
    problems: list[dict] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTS)
            if not found:
                problems.append(problem(p, f"no video ({', '.join(VIDEO_EXTS)}) in this folder",
                                        "pass video files, or a folder that holds some"))
            out += found
        elif p.is_file():
            out.append(p)
        else:
            problems.append(problem(p, "no such file or folder", "check the path"))
    if problems:
        raise DataError.of(problems)
    return list(dict.fromkeys(q.resolve() for q in out))


def video_records(paths: Iterable[str | Path], poses: str | Path = "",
                  pose_options: PoseOptions | None = None) -> list[VideoRecord]:
    """Records of unannotated videos (labels empty), with keypoints from ``poses`` where present
    (any format of :mod:`kit.data.pose_formats`, read with ``pose_options``)."""
    videos = video_paths(paths)
    problems: list[dict] = []
    names = output_names(videos, problems)
    pose_dir = Path(poses) if str(poses) else None
    if pose_dir is not None and not pose_dir.is_dir():
        problems.append(problem(pose_dir, "not a folder", "pass the folder holding <video name>.npy keypoints"))
        pose_dir = None
    sources = _pose_files(pose_dir, {names[v] for v in videos} | {v.stem for v in videos}, [], None) \
        if pose_dir is not None else {}
    records = []
    for v in videos:
        try:
            meta = probe_video(v)
        except DataError as e:
            problems += e.problems
            continue
        source = sources.get(names[v]) or sources.get(v.stem)
        kp, skel = (None, None) if source is None else \
            read_keypoints(source, v.stem, meta.num_frames, pose_options or PoseOptions(), pose_dir, problems)
        records.append(VideoRecord(names[v], v, None, source[0] if kp is not None else None, meta.num_frames,
                                   meta.fps, meta.width, meta.height, {}, kp, skeleton=skel))
    unify(records, pose_dir, [])  # individuals padded as in training; skeleton notes are training's to give
    if problems:
        raise DataError.of(problems)
    return records


def output_names(videos: list[Path], problems: list[dict]) -> dict[Path, str]:
    """A unique name per video: its stem, or ``<stem>_<extension>`` where stems clash."""
    stems: dict[str, list[Path]] = {}
    for v in videos:
        stems.setdefault(v.stem, []).append(v)
    names = {v: v.stem if len(same) == 1 else f"{v.stem}_{v.suffix.lstrip('.').lower()}"
             for same in stems.values() for v in same}
    seen: dict[str, Path] = {}
    for v, n in names.items():
        if n in seen:
            problems.append(problem(v, f"its outputs would be named {n!r} like those of {seen[n]}", "rename one, or "
                                    "label them in two calls with different output folders"))
        seen.setdefault(n, v)
    return names
