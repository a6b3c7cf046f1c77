"""Pose files as pose estimators write them, found by name in the poses folder and read into keypoints.

Which file belongs to which video (``<stem>`` is the video's file name without extension):

====================================  ==================================================
``<stem>.npy``                         the kit's own ``(L, J, 2|3)`` array (:mod:`kit.data.poses`)
``<stem>DLC_<scorer>.csv`` / ``.h5``   DeepLabCut (:mod:`.deeplabcut`); also ``<stem>.csv``/``.h5``
``<stem>.analysis.h5``                 SLEAP analysis (:mod:`.sleap`); also SLEAP's default
                                       ``<labels>.<nnn>_<stem>.analysis.h5``
``<stem>.slp``, ``<stem>.<ext>.predictions.slp``   SLEAP project / predictions (:mod:`.sleap`)
``<stem>/`` of ``*_<frame:012d>_keypoints.json``   OpenPose, or those files directly in the folder
``<stem>.json``, ``results_<stem>.json``           MMPose demo output or COCO keypoints (:mod:`.mmpose`)
====================================  ==================================================

``skeleton.json`` and a DeepLabCut ``config.yaml`` in the folder describe the skeleton; they are not pose files.
"""
from __future__ import annotations

import re
from pathlib import Path

from kit.data.pose_formats.base import PoseData, PoseFileError, PoseOptions
from kit.data.pose_formats.skeleton import SKELETONS, Skeleton, builtin_skeleton

__all__ = ["PoseData", "PoseFileError", "PoseOptions", "SKELETONS", "Skeleton", "builtin_skeleton", "pose_sources",
           "read_pose_source", "source_stem"]

_VIDEO_SUFFIX = re.compile(r"\.(mp4|avi|mov|mkv|webm)$", re.I)
_SLEAP_EXPORT = re.compile(r"^.*\.\d{3}_(.+)$")  # SLEAP's default analysis name <labels>.<video index>_<video>
_NOT_POSES = {"skeleton.json", "config.yaml"}
_SUFFIXES = (".npy", ".csv", ".h5", ".hdf5", ".slp", ".json")


def source_stem(p: Path) -> str | None:
    """The video stem a pose file or folder names, or None when it is not a pose source."""
    from kit.data.pose_formats.openpose import FRAME_FILE

    name = p.name
    if name.lower() in _NOT_POSES or name[0] == ".":
        return None
    if p.is_dir():
        return name if any(FRAME_FILE.match(q.name) for q in p.iterdir()) else None
    m = FRAME_FILE.match(name)
    if m:
        return m.group(1)
    low = name.lower()
    suffix = next((s for s in _SUFFIXES if low.endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    if suffix == ".slp":
        stem = _VIDEO_SUFFIX.sub("", re.sub(r"\.predictions$", "", stem))
    elif suffix in (".h5", ".hdf5") and stem.lower().endswith(".analysis"):
        stem = stem[: -len(".analysis")]
        stem = _SLEAP_EXPORT.sub(r"\1", stem)
    elif suffix == ".json" and stem.startswith("results_"):
        stem = stem[len("results_"):]
    if suffix in (".csv", ".h5", ".hdf5") and "DLC_" in stem:
        stem = stem[: stem.index("DLC_")]  # DeepLabCut appends its scorer: <video>DLC_<net>_<project>...
    return stem or None


def pose_sources(pose_dir: Path) -> dict[str, list[Path]]:
    """``{stem: [paths]}`` of every pose source in the folder (several paths: two sources, or OpenPose frames)."""
    out: dict[str, list[Path]] = {}
    for p in sorted(pose_dir.iterdir()):
        stem = source_stem(p)
        if stem is not None:
            out.setdefault(stem, []).append(p)
    return out


def read_pose_source(paths: list[Path], video_stem: str, n: int, options: PoseOptions,
                     pose_dir: Path | None) -> tuple:
    """``(keypoints (n, I*J, 3) float32, Skeleton)`` of one video's pose source.

    Raises:
        PoseFileError: the file cannot be used (what is wrong, how to fix it).
    """
    from kit.data.pose_formats.assemble import assemble
    from kit.data.pose_formats.openpose import FRAME_FILE, read_openpose

    p = paths[0]
    if p.is_dir() or FRAME_FILE.match(p.name):
        files = [q for q in p.iterdir() if FRAME_FILE.match(q.name)] if p.is_dir() else paths
        return assemble(read_openpose(files), n, options, pose_dir)
    low = p.name.lower()
    if low.endswith(".csv"):
        from kit.data.pose_formats.deeplabcut import read_dlc

        data = read_dlc(p)
    elif low.endswith((".h5", ".hdf5")):
        from kit.data.pose_formats.deeplabcut import is_dlc_h5, read_dlc
        from kit.data.pose_formats.sleap import read_sleap_h5

        try:
            dlc = is_dlc_h5(p)
        except OSError as e:
            raise PoseFileError(f"not a readable HDF5 file ({e})", "export it again from DeepLabCut or SLEAP") from None
        data = read_dlc(p) if dlc else read_sleap_h5(p)
    elif low.endswith(".slp"):
        from kit.data.pose_formats.sleap import read_slp

        data = read_slp(p, video_stem)
    elif low.endswith(".json"):
        from kit.data.pose_formats.mmpose import read_pose_json

        data = read_pose_json(p)
    else:
        raise PoseFileError("not a pose file format the kit reads", "see docs/guides/poses.md for the formats")
    return assemble(data, n, options, pose_dir)
