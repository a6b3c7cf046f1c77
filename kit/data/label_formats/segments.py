"""Segment JSON in the layout of ActivityNet and THUMOS annotations.

Layout (ActivityNet's ``activity_net.v1-3.min.json``): ``{"database": {"<video id>": {"duration":
seconds, "annotations": [{"segment": [start, end], "label": "name"}, ...], ...}}}``; the top
level may also be the ``{video: {...}}`` mapping itself. Segment times are seconds from the
first frame. A video id matches the video of the same stem, or ``v_<id>`` (ActivityNet's file
names).
"""
from __future__ import annotations

import json
from pathlib import Path

from kit.data.label_formats.timeline import Event, TimeBase
from kit.data.video import problem

__all__ = ["read_segments"]


def is_segments(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def read_segments(path: Path, problems: list[dict]) -> list[tuple[str, list[Event], TimeBase]]:
    """``[(video id, events, time base)]``, one per video of the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problems.append(problem(path, f"not readable JSON ({e})", "save it as UTF-8 JSON"))
        return []
    videos = data.get("database", data) if isinstance(data, dict) else None
    if not isinstance(videos, dict) or not all(isinstance(v, dict) and "annotations" in v for v in videos.values()):
        problems.append(problem(path, "not segment JSON: expected {video: {\"annotations\": [{\"segment\": [t0, t1], "
                                "\"label\": name}]}} (optionally under \"database\")", "write it in that layout"))
        return []
    out = []
    for vid, entry in videos.items():
        events, bad = [], 0
        for k, a in enumerate(entry["annotations"]):
            seg = a.get("segment") if isinstance(a, dict) else None
            if not (isinstance(seg, list) and len(seg) == 2 and all(isinstance(x, (int, float)) for x in seg)
                    and isinstance(a.get("label"), str)):
                bad += 1
                continue
            events.append(Event(a["label"], float(seg[0]), float(seg[1]), "s", "", False,
                                f"{path.name} {vid} annotation {k}"))
        if bad:
            problems.append(problem(path, f"video {vid}: {bad} annotation(s) without a segment [t0, t1] in seconds "
                                    "and a label", "give each annotation \"segment\" and \"label\""))
        dur = entry.get("duration")
        fps = entry.get("fps")
        out.append((vid, events, TimeBase(duration=float(dur) if isinstance(dur, (int, float)) else None,
                                          fps=float(fps) if isinstance(fps, (int, float)) else None)))
    return out
