"""From what a reader found to the kit's keypoints: frames, one individual or all, scores, the skeleton.

Every source comes out as ``(L, I * J, 3)`` float32 (x, y, score; individuals one after another,
missing joints 0, 0, 0) with its :class:`~kit.data.pose_formats.skeleton.Skeleton`.

Legend: ``L`` frames of the video, ``I`` individuals, ``J`` joints of one individual.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from kit.data.pose_formats.base import PoseData, PoseFileError, PoseOptions
from kit.data.pose_formats.skeleton import SKELETONS, Skeleton, builtin_skeleton, nearest_edges, read_skeleton_json

__all__ = ["assemble", "resolve_skeleton", "unify"]

SKELETON_FIX = ("set skeleton= to coco17, body25, coco18, blazepose33 or a JSON file {\"joints\": [...], "
                "\"edges\": [[i, j], ...]}, or put that JSON as skeleton.json in the poses folder")


def resolve_skeleton(J: int, joints, edges, default: str, options: PoseOptions, pose_dir: Path | None,
                     xy: np.ndarray | None) -> Skeleton:
    """The skeleton of ``J`` joints: the file's edges, else ``skeleton=``, else ``skeleton.json`` in the
    poses folder, else the one the format implies (OpenPose; 17 unnamed joints: COCO-17), else each
    joint joined to its nearest neighbour (``source="nearest"``). Raises PoseFileError on a joint count mismatch.
    """
    names = tuple(joints) if joints else None
    if edges:
        bad = [e for e in edges if not (0 <= e[0] < J and 0 <= e[1] < J)]
        if bad:
            raise PoseFileError(f"skeleton edge {bad[0]} names a joint beyond the file's {J}", SKELETON_FIX)
        return Skeleton(names or tuple(f"j{k}" for k in range(J)), tuple(map(tuple, edges)), "file")
    chosen, where = None, ""
    if options.skeleton:
        where = f"skeleton={options.skeleton}"
        try:
            chosen = builtin_skeleton(options.skeleton) if options.skeleton in SKELETONS else \
                read_skeleton_json(options.skeleton)
        except ValueError as e:
            raise PoseFileError(str(e), SKELETON_FIX) from None
    elif pose_dir is not None and (pose_dir / "skeleton.json").is_file():
        where = str(pose_dir / "skeleton.json")
        try:
            chosen = read_skeleton_json(pose_dir / "skeleton.json")
        except ValueError as e:
            raise PoseFileError(str(e), SKELETON_FIX) from None
    elif default or (names is None and J == 17):
        chosen = builtin_skeleton(default or "coco17")
    if chosen is not None:
        if chosen.num_joints != J:
            raise PoseFileError(f"{where or chosen.source} has {chosen.num_joints} joints, the keypoints {J}",
                                SKELETON_FIX)
        return replace(chosen, joints=names or chosen.joints)
    near = nearest_edges(xy.reshape(xy.shape[0], -1, J, 2)[:, 0]) if xy is not None else ()
    return Skeleton(names or tuple(f"j{k}" for k in range(J)), near, "nearest")


def assemble(data: PoseData, n: int, options: PoseOptions, pose_dir: Path | None) -> tuple[np.ndarray, Skeleton]:
    """``(n, I * J, 3)`` float32 keypoints and their skeleton from a reader's :class:`PoseData`.

    Raises:
        PoseFileError: more frames than the video, an unknown ``individual``, a skeleton that does not fit.
    """
    xy, score = data.xy, data.score
    L, I, J, _ = xy.shape
    if L > n:
        raise PoseFileError(f"{data.fmt} keypoints for {L} frames, but the video has {n}",
                            "check that the file belongs to this video (same name, same cut)")
    names = list(data.individuals) if len(data.individuals) == I else [f"individual_{i}" for i in range(I)]
    if options.individual:
        if options.individual not in names:
            raise PoseFileError(f"no individual {options.individual!r}; the file has {names}",
                                "set individual= to one of those, or leave it empty to use all")
        k = names.index(options.individual)
        xy, score, names = xy[:, k:k + 1], None if score is None else score[:, k:k + 1], [options.individual]
        I = 1
    skel = resolve_skeleton(J, data.joints, data.edges, data.default_skeleton, options, pose_dir, xy)
    out = np.zeros((n, I, J, 3), np.float32)
    s = np.ones(xy.shape[:3]) if score is None else score
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(xy).all(-1) & np.isfinite(s) & (s >= options.min_score)  # (L, I, J)
    out[:L, ..., :2] = np.where(ok[..., None], xy, 0.0)
    out[:L, ..., 2] = np.where(ok, s, 0.0)
    return out.reshape(n, I * J, 3), replace(skel, individuals=tuple(names))  # (n, I*J, 3)


def unify(records, pose_dir, problems: list[dict]) -> None:
    """One skeleton for a dataset: the same joints everywhere (else a problem), individuals padded to the
    most any file has (missing individuals are missing joints), and one note when edges were guessed."""
    from kit.data.video import problem, warning

    with_pose = [r for r in records if r.keypoints is not None]
    if not with_pose:
        return
    first = with_pose[0].skeleton or Skeleton(tuple(f"j{k}" for k in range(with_pose[0].keypoints.shape[1])), ())
    for r in with_pose:
        sk = r.skeleton or first
        generic = "j0" in (sk.joints[:1] + first.joints[:1])  # unnamed joints match any names
        if sk.num_joints != first.num_joints or (sk.joints != first.joints and not generic):
            problems.append(problem(r.pose_path or pose_dir, f"joints {list(sk.joints)[:6]}... ({sk.num_joints}) differ "
                                    f"from {with_pose[0].stem}'s {list(first.joints)[:6]}... ({first.num_joints})",
                                    "use one skeleton (the same joints) for every video"))
            return
    J = first.num_joints
    I = max(r.keypoints.shape[1] // J for r in with_pose)
    individuals = max((r.skeleton.individuals for r in with_pose if r.skeleton), key=len, default=("",))
    for r in with_pose:
        have = r.keypoints.shape[1] // J
        if have < I:  # (L, have*J, 3) -> (L, I*J, 3): absent individuals are missing joints
            r.keypoints = np.concatenate([r.keypoints, np.zeros((len(r.keypoints), (I - have) * J, 3), np.float32)], 1)
        r.skeleton = replace(first, individuals=tuple(individuals) if len(individuals) == I else
                             tuple(f"individual_{i}" for i in range(I)))
    if first.source == "nearest":
        problems.append(warning(pose_dir or with_pose[0].pose_path, f"no skeleton edges for the {J} joints: each joint "
                                "is joined to its nearest neighbour", SKELETON_FIX))
