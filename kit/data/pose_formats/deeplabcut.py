"""DeepLabCut output: ``<video>DLC_<scorer>.csv`` / ``.h5``, single- and multi-animal.

Layout (DeepLabCut docs, "Analyze videos"; read here with ``movement.io.load_poses.from_dlc_file``,
the field's reader): a table with one row per frame and a column MultiIndex of header rows
``scorer / [individuals] / bodyparts / coords``, coords ``x, y, likelihood``; the CSV writes those
header rows as its first 3 (4 for multi-animal) lines, the H5 stores the same table under the key
``df_with_missing``. Skeleton edges come from a DeepLabCut ``config.yaml`` next to the file
(``skeleton: [[bodypart, bodypart], ...]``) when there is one.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from kit.data.pose_formats.base import PoseData, PoseFileError

__all__ = ["read_dlc", "is_dlc_h5"]

_FIX = ("export it again from DeepLabCut (deeplabcut.analyze_videos(..., save_as_csv=True)), whose header rows are "
        "scorer / [individuals] / bodyparts / coords")


def is_dlc_h5(path: Path) -> bool:
    """Whether an .h5 file is a pandas table (DeepLabCut) rather than a SLEAP analysis file."""
    import h5py

    with h5py.File(path, "r") as f:
        return "tracks" not in f


def _check_csv_header(path: Path) -> None:
    with open(path, newline="") as fh:
        rows = [r for _, r in zip(range(4), csv.reader(fh))]
    firsts = [r[0].strip().lower() if r else "" for r in rows]
    want3, want4 = ["scorer", "bodyparts", "coords"], ["scorer", "individuals", "bodyparts", "coords"]
    if firsts[:4] != want4 and firsts[:3] != want3:
        raise PoseFileError(f"header rows start {firsts[:4]}, not DeepLabCut's {want3} or {want4}", _FIX)


def read_dlc(path: Path) -> PoseData:
    """A DeepLabCut CSV or H5 file (see the module docstring)."""
    if path.suffix.lower() == ".csv":
        _check_csv_header(path)
    from movement.io import load_poses  # heavy (xarray): imported only when such files are read

    try:
        ds = load_poses.from_dlc_file(path)
    except Exception as e:  # movement raises ValueError/KeyError/OSError for malformed tables
        raise PoseFileError(f"not a DeepLabCut pose table ({type(e).__name__}: {str(e).splitlines()[0][:160]})",
                            _FIX) from None
    pos = ds.position.transpose("time", "individuals", "keypoints", "space").values  # (L, I, J, 2)
    conf = ds.confidence.transpose("time", "individuals", "keypoints").values  # (L, I, J)
    joints = [str(k) for k in ds.keypoints.values]
    return PoseData(pos.astype(np.float64), conf.astype(np.float64), joints, _config_edges(path.parent, joints),
                    [str(i) for i in ds.individuals.values], fmt="DeepLabCut")


def _config_edges(folder: Path, joints: list[str]) -> list[tuple[int, int]] | None:
    """Edges from a DeepLabCut ``config.yaml`` beside the file (``skeleton`` lists bodypart pairs)."""
    cfg = folder / "config.yaml"
    if not cfg.is_file():
        return None
    import yaml

    try:
        d = yaml.safe_load(cfg.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise PoseFileError(f"{cfg} cannot be read ({e})", "fix or remove that DeepLabCut config.yaml") from None
    pairs = d.get("skeleton") or []
    index = {n: i for i, n in enumerate(joints)}
    unknown = [p for p in pairs if len(p) != 2 or p[0] not in index or p[1] not in index]
    if unknown:
        raise PoseFileError(f"{cfg} skeleton pair {unknown[0]} names bodyparts not in the file ({joints})",
                            "make config.yaml's skeleton name the file's bodyparts")
    return [(index[a], index[b]) for a, b in pairs] or None
