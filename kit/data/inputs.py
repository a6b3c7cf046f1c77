"""Videos to label: files or folders of videos nobody annotated, as records without labels.

``video_records(["clip.mp4", "more/"], poses="kp/")`` gives one :class:`~kit.data.contract.VideoRecord`
per video (folders: every ``.mp4 .avi .mov .mkv .webm`` in it, sorted, not recursive), its
keypoints from its pose file (``<stem>.npy`` or another tool's format, :mod:`kit.data.pose_formats`) in
``poses`` when given, else where the data contract puts them: ``<root>/Poses`` beside a video in
``<root>/Videos/`` (:func:`contract_pose_dir`), else the first of ``pose_dirs`` that has one; and no labels.
A record's ``stem`` names its outputs: two videos with the same stem (``test.avi``, ``test.mp4``)
become ``test_avi`` and ``test_mp4``. Every problem (a missing path, a file that is not a video, names that still clash,
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


def contract_pose_dir(video: str | Path) -> Path | None:
    """``<root>/Poses`` for a video in ``<root>/Videos`` (folder names in any case), when it exists."""
    folder = Path(video).parent
    if folder.name.lower() != "videos":
        return None
    return next((d for d in sorted(folder.parent.iterdir()) if d.is_dir() and d.name.lower() == "poses"), None)


def video_records(paths: Iterable[str | Path], poses: str | Path = "", pose_options: PoseOptions | None = None,
                  pose_dirs: Iterable[str | Path] = ()) -> list[VideoRecord]:
    """Records of unannotated videos (labels empty), with keypoints where present.

    Args:
        paths: video files or folders of videos.
        poses: the folder of pose files for every video (any format of :mod:`kit.data.pose_formats`);
            ``""``: each video's :func:`contract_pose_dir`, else the first of ``pose_dirs`` holding its file.
        pose_options: how pose files are read (the run's skeleton, individual, pose_min_score).
        pose_dirs: folders to look in when ``poses`` is empty and the contract's has no file.
    """
    videos = video_paths(paths)
    problems: list[dict] = []
    names = output_names(videos, problems)
    pose_dir = Path(poses) if str(poses) else None
    if pose_dir is not None and not pose_dir.is_dir():
        problems.append(problem(pose_dir, "not a folder", "pass the folder holding <video name>.npy keypoints"))
        pose_dir = None
    wanted, found = {names[v] for v in videos} | {v.stem for v in videos}, {}

    def _sources(d: Path) -> dict:  # each folder's pose files, listed once
        if d not in found:
            found[d] = _pose_files(d, wanted, [], None)
        return found[d]

    records = []
    for v in videos:
        try:
            meta = probe_video(v)
        except DataError as e:
            problems += e.problems
            continue
        dirs = [pose_dir] if pose_dir is not None else \
            [d for d in [contract_pose_dir(v), *map(Path, pose_dirs)] if d is not None and d.is_dir()]
        source, where = next(((src, d) for d in dirs if (src := _sources(d).get(names[v]) or _sources(d).get(v.stem))),
                             (None, None))
        kp, skel = (None, None) if source is None else \
            read_keypoints(source, v.stem, meta.num_frames, pose_options or PoseOptions(), where, problems)
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
