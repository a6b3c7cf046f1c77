"""MMPose predictions and COCO keypoint files: one JSON per video.

Two layouts are read:

- MMPose's demo output (mmpose ``demo/topdown_demo_with_mmdet.py`` ``--save-predictions``, written as
  ``results_<video>.json``): ``{"meta_info": {..., "keypoint_id2name": {...}, "skeleton_links": [[i, j], ...]},
  "instance_info": [{"frame_id": f, "instances": [{"keypoints": [[x, y], ...], "keypoint_scores": [...]}]}]}``.
  The demo counts frames from 1 (it increments before appending) and skips frames without a
  detection: those are missing here.
- COCO keypoint annotations (cocodataset.org "Data format", as ``sleap_io.save_coco`` writes them):
  ``{"images": [{"id", "file_name"}], "annotations": [{"image_id", "keypoints": [x, y, v, ...]}],
  "categories": [{"keypoints": [names], "skeleton": [[a, b], ...] (1-based)}]}``. ``v`` is a visibility
  flag (0 not labelled, 1 occluded, 2 visible), not a confidence: 0 is missing, 1 and 2 give score 1.
  An image's frame is the number its ``file_name`` ends with (``clip_frame_000123.png``; sleap-io and
  frame extractors name them so) when every image has a distinct one, else its rank in order of ``id``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from kit.data.pose_formats.base import PoseData, PoseFileError

__all__ = ["is_pose_json", "read_pose_json"]

_FIX = ("write MMPose's demo output (--save-predictions: meta_info + instance_info) or a COCO keypoint file "
        "(images, annotations with flat x, y, v keypoints, categories)")


def is_pose_json(d) -> bool:
    return isinstance(d, dict) and ("instance_info" in d or ("annotations" in d and "images" in d))


def read_pose_json(path: Path) -> PoseData:
    """An MMPose demo prediction file or a COCO keypoint file (see the module docstring)."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PoseFileError(f"not readable JSON ({e})", _FIX) from None
    if not is_pose_json(d):
        raise PoseFileError(f"top-level keys {list(d)[:6] if isinstance(d, dict) else type(d).__name__} are neither "
                            "MMPose's (instance_info) nor COCO's (images, annotations)", _FIX)
    try:
        return _mmpose(d) if "instance_info" in d else _coco(d)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise PoseFileError(f"malformed entry ({type(e).__name__}: {e})", _FIX) from None


def _fill(frames: dict[int, list[tuple[np.ndarray, np.ndarray]]], J: int) -> tuple[np.ndarray, np.ndarray]:
    L, I = max(frames) + 1, max(len(v) for v in frames.values())
    xy, score = np.full((L, I, J, 2), np.nan), np.zeros((L, I, J))
    for t, insts in frames.items():
        for i, (p, s) in enumerate(insts):
            if p.shape != (J, 2) or s.shape != (J,):
                raise ValueError(f"frame {t}: an instance has {p.shape[0]} joints, another {J}")
            xy[t, i], score[t, i] = p, s
    return xy, score


def _mmpose(d: dict) -> PoseData:
    frames: dict[int, list] = {}
    J = None
    for entry in d["instance_info"]:
        t = int(entry["frame_id"]) - 1  # the demo's frame_id counts from 1
        if t < 0:
            raise ValueError(f"frame_id {entry['frame_id']} (the demo counts frames from 1)")
        for inst in entry["instances"]:
            p = np.asarray(inst["keypoints"], dtype=np.float64).reshape(-1, 2)
            s = np.asarray(inst.get("keypoint_scores", np.ones(len(p))), dtype=np.float64).reshape(-1)
            J = J or len(p)
            frames.setdefault(t, []).append((p, s))
    if not frames:
        raise ValueError("no instance in any frame")
    xy, score = _fill(frames, J)
    meta = d.get("meta_info") or {}
    names = meta.get("keypoint_id2name")
    joints = [str(names[str(j)] if str(j) in names else names[j]) for j in range(J)] if isinstance(names, dict) \
        and len(names) == J else None
    links = meta.get("skeleton_links")
    edges = [(int(a), int(b)) for a, b in links] if isinstance(links, list) and links else None
    return PoseData(xy, score, joints, edges, [f"instance_{i}" for i in range(xy.shape[1])], fmt="MMPose")


def _coco(d: dict) -> PoseData:
    images = sorted(d["images"], key=lambda im: im["id"])
    numbers = [re.search(r"(\d+)\D*$", str(im.get("file_name", ""))) for im in images]
    if all(numbers) and len({int(m.group(1)) for m in numbers}) == len(images):
        order = {im["id"]: int(m.group(1)) for im, m in zip(images, numbers)}  # frame numbers in the names
    else:
        order = {im["id"]: k for k, im in enumerate(images)}
    cats = d.get("categories") or [{}]
    names = cats[0].get("keypoints")
    frames: dict[int, list] = {}
    J = len(names) if names else None
    for ann in d["annotations"]:
        if ann["image_id"] not in order:
            raise ValueError(f"annotation {ann.get('id')} names image_id {ann['image_id']}, which images lacks")
        k = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)  # flat x, y, v
        J = J or len(k)
        v = k[:, 2]
        p = np.where((v > 0)[:, None], k[:, :2], np.nan)  # v = 0: not labelled
        frames.setdefault(order[ann["image_id"]], []).append((p, (v > 0).astype(np.float64)))
    if not frames:
        raise ValueError("no annotation")
    xy, score = _fill(frames, J)
    if max(order.values()) + 1 > xy.shape[0]:  # trailing images without annotations: frames without anyone
        pad = max(order.values()) + 1 - xy.shape[0]
        xy = np.concatenate([xy, np.full((pad,) + xy.shape[1:], np.nan)])
        score = np.concatenate([score, np.zeros((pad,) + score.shape[1:])])
    skel = cats[0].get("skeleton")
    edges = [(int(a) - 1, int(b) - 1) for a, b in skel] if skel else None  # COCO's skeleton is 1-based
    return PoseData(xy, score, [str(n) for n in names] if names else None, edges,
                    [f"instance_{i}" for i in range(xy.shape[1])], fmt="COCO keypoints")
