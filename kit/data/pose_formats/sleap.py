"""SLEAP output: analysis ``.h5`` files and ``.slp`` project/prediction files.

Analysis HDF5 (SLEAP docs, "Export Data For Analysis"; read with ``movement.io.load_poses.from_sleap_file``):
``tracks`` is written column-major, so h5py sees ``(tracks, 2, nodes, frames)`` (SLEAP issue #431:
transpose it), ``point_scores`` ``(tracks, nodes, frames)``, ``track_occupancy`` ``(frames, tracks)``,
``node_names``, ``track_names`` and ``edge_inds`` ``(edges, 2)``. ``.slp`` files are read with
``sleap_io.load_slp`` (the SLEAP team's reader): tracked instances per track, the skeleton's edges.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.data.pose_formats.base import PoseData, PoseFileError

__all__ = ["read_sleap_h5", "read_slp"]

_FIX = "export it again with SLEAP (File > Export Analysis HDF5, or sleap-convert --format analysis)"


def _names(ds) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in ds[()]]


def read_sleap_h5(path: Path) -> PoseData:
    """A SLEAP analysis HDF5 file (see the module docstring)."""
    import h5py

    with h5py.File(path, "r") as f:
        missing = [k for k in ("tracks", "node_names") if k not in f]
        if missing:
            raise PoseFileError(f"no {missing} dataset: not a SLEAP analysis file", _FIX)
        shape = f["tracks"].shape  # (tracks, 2, nodes, frames) as h5py reads the column-major array
        nodes = _names(f["node_names"])
        tracks = _names(f["track_names"]) if "track_names" in f else []
        edges = [tuple(int(v) for v in e) for e in f["edge_inds"][()]] if "edge_inds" in f else []
        if len(shape) != 4 or shape[1] != 2 or shape[2] != len(nodes):
            raise PoseFileError(f"tracks has shape {shape}; expected (tracks, 2, {len(nodes)} nodes, frames)", _FIX)
        if tracks and len(tracks) != shape[0]:
            raise PoseFileError(f"the track count changes within the file: tracks holds {shape[0]}, track_names "
                                f"{len(tracks)}", _FIX)
        if "point_scores" in f and f["point_scores"].shape != (shape[0], shape[2], shape[3]):
            raise PoseFileError(f"point_scores has shape {f['point_scores'].shape}, tracks {shape}", _FIX)
    from movement.io import load_poses

    try:
        ds = load_poses.from_sleap_file(path)
    except Exception as e:
        raise PoseFileError(f"not a SLEAP analysis file ({type(e).__name__}: {str(e).splitlines()[0][:160]})",
                            _FIX) from None
    pos = ds.position.transpose("time", "individuals", "keypoints", "space").values  # (L, I, J, 2)
    conf = ds.confidence.transpose("time", "individuals", "keypoints").values  # (L, I, J)
    return PoseData(pos.astype(np.float64), conf.astype(np.float64), [str(k) for k in ds.keypoints.values],
                    edges or None, [str(i) for i in ds.individuals.values], fmt="SLEAP analysis")


def read_slp(path: Path, video_stem: str) -> PoseData:
    """A SLEAP ``.slp`` file; with several videos, the one whose file name has ``video_stem``."""
    import sleap_io as sio

    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as e:
        raise PoseFileError(f"not a readable SLEAP .slp file ({type(e).__name__}: {str(e).splitlines()[0][:160]})",
                            "save it again from SLEAP") from None
    if not labels.videos or not labels.skeletons:
        raise PoseFileError("holds no video or no skeleton", "predict or label the video in SLEAP and save again")
    video = labels.videos[0]
    if len(labels.videos) > 1:
        named = [v for v in labels.videos if Path(str(v.filename)).stem == video_stem]
        if len(named) != 1:
            raise PoseFileError(f"holds {len(labels.videos)} videos, none (or several) named {video_stem}",
                                "export one .slp (or analysis .h5) per video")
        video = named[0]
    if len(labels.skeletons) > 1:
        raise PoseFileError(f"holds {len(labels.skeletons)} skeletons", "use one skeleton per file")
    skel = labels.skeletons[0]
    tracked = bool(labels.tracks)
    arr = labels.numpy(video=video, untracked=not tracked, return_confidence=True)  # (L, I, J, 3)
    arr = np.asarray(arr, dtype=np.float64)
    names = [t.name for t in labels.tracks] if tracked else [f"instance_{i}" for i in range(arr.shape[1])]
    return PoseData(arr[..., :2], arr[..., 2], list(skel.node_names), [tuple(e) for e in skel.edge_inds] or None,
                    names, fmt="SLEAP .slp")
