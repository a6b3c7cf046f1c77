"""Skeletons: joint names and the edges between them, built in or read from a file.

A :class:`Skeleton` is one individual's joints; a pose file with several individuals repeats it
(keypoints of ``I`` individuals are stored flat, ``(L, I * J, 3)``, individual by individual).

Built-in skeletons (0-based edges):

- ``coco17``: the COCO keypoints (cocodataset.org "keypoints" category, ``skeleton`` made 0-based);
- ``body25``, ``coco18``: OpenPose's BODY_25 and COCO-18 models
  (openpose ``include/openpose/pose/poseParametersRender.hpp``, ``POSE_BODY_25_PAIRS_RENDER_GPU``
  and ``POSE_COCO_PAIRS_RENDER_GPU``; names from ``poseParameters.cpp`` ``POSE_BODY_25_BODY_PARTS``);
- ``blazepose33``: MediaPipe Pose landmarks (mediapipe ``python/solutions/pose_connections.py``
  ``POSE_CONNECTIONS``; names from ``pose.py`` ``PoseLandmark``).

A skeleton JSON file is ``{"joints": [names], "edges": [[i, j], ...]}`` with 0-based indices.

Legend: ``L`` frames, ``I`` individuals, ``J`` joints of one individual.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SKELETONS", "Skeleton", "builtin_skeleton", "nearest_edges", "read_skeleton_json"]

_COCO17_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                 "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                 "right_knee", "left_ankle", "right_ankle")
_COCO17_EDGES = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
                 (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
_BODY25_NAMES = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
                 "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe",
                 "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
_BODY25_EDGES = ((1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12),
                 (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21),
                 (11, 22), (22, 23), (11, 24))
_COCO18_NAMES = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee",
                 "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar")
_COCO18_EDGES = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
                 (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
_BLAZE_NAMES = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
                "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
                "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
                "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
                "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
                "left_foot_index", "right_foot_index")
_BLAZE_EDGES = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
                (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22),
                (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30),
                (29, 31), (30, 32), (27, 31), (28, 32))

SKELETONS: dict[str, tuple[tuple[str, ...], tuple[tuple[int, int], ...]]] = {
    "coco17": (_COCO17_NAMES, _COCO17_EDGES), "body25": (_BODY25_NAMES, _BODY25_EDGES),
    "coco18": (_COCO18_NAMES, _COCO18_EDGES), "blazepose33": (_BLAZE_NAMES, _BLAZE_EDGES)}


@dataclass(frozen=True)
class Skeleton:
    """One individual's joints and edges, where they came from, and the individuals of the data.

    Attributes:
        joints: J joint names.
        edges: pairs of 0-based joint indices (undirected).
        source: where the edges came from (``file``, ``coco17``, a JSON path, ``nearest``, ...).
        individuals: names of the I individuals stored one after another (``("",)``: one, unnamed).
    """

    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    source: str = ""
    individuals: tuple[str, ...] = field(default=("",))

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def drawing_edges(self, total_joints: int) -> tuple[tuple[int, int], ...]:
        """The edges of every individual in a flat ``(I * J)`` joint layout."""
        J = self.num_joints
        return tuple((i * J + a, i * J + b) for i in range(max(1, total_joints // max(J, 1))) for a, b in self.edges)

    def to_dict(self) -> dict:
        return {"joints": list(self.joints), "edges": [list(e) for e in self.edges], "source": self.source,
                "individuals": list(self.individuals)}

    @classmethod
    def from_dict(cls, d: dict) -> "Skeleton":
        return cls(tuple(d["joints"]), tuple(tuple(int(v) for v in e) for e in d["edges"]), d.get("source", ""),
                   tuple(d.get("individuals", [""])))


def builtin_skeleton(name: str) -> Skeleton:
    """``coco17``, ``body25``, ``coco18`` or ``blazepose33``."""
    if name not in SKELETONS:
        raise KeyError(name)
    names, edges = SKELETONS[name]
    return Skeleton(names, edges, name)


def read_skeleton_json(path: str | Path) -> Skeleton:
    """A ``{"joints": [names], "edges": [[i, j], ...]}`` file; ValueError (what is wrong, how to fix) if not."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    joints, edges = (d.get("joints"), d.get("edges")) if isinstance(d, dict) else (None, None)
    if not isinstance(joints, list) or not isinstance(edges, list):
        raise ValueError(f'{path}: expected {{"joints": [names], "edges": [[i, j], ...]}}, got {str(d)[:80]}')
    J = len(joints)
    bad = [e for e in edges if not (isinstance(e, list) and len(e) == 2 and all(isinstance(v, int) and 0 <= v < J
                                                                              for v in e))]
    if bad:
        raise ValueError(f"{path}: edge {bad[0]} is not a pair of 0-based joint indices below {J}")
    return Skeleton(tuple(str(j) for j in joints), tuple((a, b) for a, b in edges), str(path))


def nearest_edges(xy: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Each joint joined to its nearest other joint (median position over the frames).

    Shapes: xy (L, J, 2) with NaN for missing joints -> pairs of joint indices.
    """
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN joints
            med = np.nanmedian(xy.reshape(-1, xy.shape[-2], 2), axis=0)  # (J, 2)
    J = len(med)
    d = np.linalg.norm(med[:, None] - med[None], axis=-1)  # (J, J)
    d[np.arange(J), np.arange(J)] = np.inf
    d[~np.isfinite(d)] = np.inf
    edges = set()
    for j in range(J):
        if np.isfinite(d[j]).any():
            k = int(np.argmin(d[j]))
            edges.add((min(j, k), max(j, k)))
    return tuple(sorted(edges))
