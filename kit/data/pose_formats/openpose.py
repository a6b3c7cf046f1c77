"""OpenPose output: one JSON per frame, ``<video>_<frame:012d>_keypoints.json``.

Layout (openpose ``doc/02_output.md``, "JSON-UI Format"): ``{"version": 1.3, "people": [{"person_id": [-1],
"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...], ...}]}``; ``c`` is the confidence, and an
undetected joint is written ``0, 0, 0``. BODY_25 (the default model) has 25 joints, COCO 18. People
are not tracked across frames: their order may change, which the kit's pooling over individuals
ignores. The files of one video sit in a folder ``Poses/<video>/`` or directly in ``Poses/``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from kit.data.pose_formats.base import PoseData, PoseFileError

__all__ = ["FRAME_FILE", "read_openpose"]

FRAME_FILE = re.compile(r"^(.*)_(\d{12})_keypoints\.json$")


def read_openpose(files: list[Path]) -> PoseData:
    """The per-frame JSON files of one video (any order); frame numbers must run 0, 1, 2, ... without gaps."""
    by_frame = {int(FRAME_FILE.match(p.name).group(2)): p for p in files}
    frames = sorted(by_frame)
    gaps = sorted(set(range(frames[-1] + 1)) - set(frames))
    if gaps:
        first = by_frame[frames[0]]
        want = FRAME_FILE.sub(lambda m: f"{m.group(1)}_{gaps[0]:012d}_keypoints.json", first.name)
        raise PoseFileError(f"{len(gaps)} frame file(s) missing from the JSON folder, first {want}",
                            "run OpenPose again with --write_json on the whole video (a frame without people "
                            "is still written, with people: [])")
    people, J = [], None
    for i in frames:
        p = by_frame[i]
        try:
            d = json.loads(p.read_text())
            persons = [np.asarray(q["pose_keypoints_2d"], dtype=np.float64) for q in d["people"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PoseFileError(f"{p.name}: not an OpenPose keypoint file ({type(e).__name__}: {e})",
                                "write it with OpenPose --write_json") from None
        for q in persons:
            if q.size % 3 or (J is not None and q.size != 3 * J):
                raise PoseFileError(f"{p.name}: pose_keypoints_2d has {q.size} values; expected "
                                    f"{'3 x J' if J is None else 3 * J} (x, y, c per joint)",
                                    "use one OpenPose model (BODY_25 or COCO) for the whole video")
            J = q.size // 3
        people.append(persons)
    if J is None:
        raise PoseFileError(f"no person in any of the {len(frames)} frames", "check the video, or remove the folder")
    I = max(len(p) for p in people)
    out = np.full((len(frames), I, J, 3), np.nan)
    for t, persons in enumerate(people):
        for i, q in enumerate(persons):
            out[t, i] = q.reshape(J, 3)
    undetected = (out == 0).all(-1)  # OpenPose writes 0, 0, 0 for a joint it did not find
    out[undetected] = np.nan
    default = {25: "body25", 18: "coco18"}.get(J, "")
    return PoseData(out[..., :2], out[..., 2], None, None, [f"person_{i}" for i in range(I)], default, "OpenPose")
