"""Times to frames with the video's own frame timestamps, and events to per-frame labels.

Annotation tools store times in seconds (BORIS, segment JSON) or milliseconds (ELAN), measured
from the first frame as the tool's player shows it. A video's frames are not always evenly spaced
(variable frame rate, an AVI whose first frame has pts 1), so a time becomes a frame through the
frame timestamps themselves: the presentation timestamps (PyAV ``pts * time_base``) of every
frame, sorted, minus the first. Frame ``i`` shows from ``t[i]`` until ``t[i + 1]``; time ``x`` is
in frame ``searchsorted(t, x + tol, "right") - 1``. A state from ``x0`` to ``x1`` labels the frames
it shows, ``frame(x0) .. frame(x1) - 1`` (a stop exactly on a frame's start leaves that frame out),
and at least one frame. ``tol`` (half a millisecond, at most a quarter frame) absorbs the rounding
of times written with 3 decimals.

:class:`Event` is what every reader returns; :func:`labels_of` turns one video's events into
per-frame label columns and counts what does not fit (overlaps, past the end) instead of hiding it.

Legend: ``L`` frames in a video.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.data.video import problem, probe_video

__all__ = ["Event", "TimeBase", "check_time_base", "frame_times", "labels_of", "to_frames"]


@dataclass
class Event:
    """One labelled stretch (a state), or one instant (``point``), from an annotation file.

    Times are seconds from the first frame when ``unit == "s"``, frame indices (``stop``
    exclusive) when ``unit == "frame"``.
    """

    label: str
    start: float
    stop: float
    unit: str = "s"  # "s" (seconds) or "frame"
    subject: str = ""  # BORIS subject, CVAT track, ELAN tier: the one whose states must not overlap
    point: bool = False  # a POINT event: one frame
    where: str = ""  # file and line/element, for messages
    column: str = "action"  # the output column (task) it belongs to


@dataclass
class TimeBase:
    """What a file says about the video's timing, checked against the video."""

    fps: float | None = None
    duration: float | None = None  # seconds
    frames: int | None = None
    notes: list[str] = field(default_factory=list)


def frame_times(path: str | Path) -> np.ndarray:
    """Seconds of every frame from the first, ``(L,)``, from PyAV packet timestamps.

    The packets' pts, sorted, are the frames' presentation times; when their count differs from
    the frames the kit decodes (:func:`probe_video`), the frames are decoded for their own pts.
    """
    import av

    meta = probe_video(path)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        tb = float(s.time_base)
        pts = sorted(p.pts for p in c.demux(s) if p.pts is not None and p.size)
    if len(pts) != meta.num_frames:
        with av.open(str(path)) as c:
            pts = sorted(f.pts for f in c.decode(video=0) if f.pts is not None)
    if len(pts) != meta.num_frames:
        # no usable timestamps: evenly spaced at the header's rate (said in docs/guides/label-import.md)
        return np.arange(meta.num_frames) / meta.fps
    t = (np.asarray(pts, np.float64) - pts[0]) * tb
    return t


def to_frames(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Frame index of each time (seconds from the first frame); -1 before the first frame.

    Shapes:
        times: ``(L,)`` frame timestamps; t: ``(N,)``; returns ``(N,)`` int64.
    """
    step = np.median(np.diff(times)) if len(times) > 1 else 1.0
    tol = min(0.0005, step / 4)
    return np.searchsorted(times, np.asarray(t, np.float64) + tol, side="right").astype(np.int64) - 1


def _spans(events: list[Event], times: np.ndarray) -> list[tuple[int, int]]:
    """``[a, b)`` frame spans of the events; ``b`` past ``L`` means past the video's end."""
    n = len(times)
    out = []
    secs = np.array([[e.start, e.stop] for e in events if e.unit == "s"], np.float64).reshape(-1, 2)
    if len(secs):
        step = float(np.median(np.diff(times))) if n > 1 else 1.0
        extra = max(0, int(np.ceil((secs.max() - times[-1]) / step)) + 2)
        ext = np.concatenate([times, times[-1] + step * np.arange(1, extra + 1)])  # frames after the end, spaced alike
        fa, fb = to_frames(ext, secs[:, 0]), to_frames(ext, secs[:, 1])
    k = 0
    for e in events:
        if e.unit == "s":
            a, b = max(int(fa[k]), 0), int(fb[k])
            k += 1
        else:
            a, b = int(e.start), int(e.stop)
        out.append((a, a + 1 if e.point else max(b, a + 1)))
    return out


def labels_of(events: list[Event], times: np.ndarray, source: str, overlap: str = "error",
              problems: list[dict] | None = None) -> dict[str, list[str]]:
    """Per-frame label columns ``{column: [L labels]}`` of one video's events.

    Args:
        events: the video's events (all columns).
        times: its frame timestamps ``(L,)``.
        source: the annotation file, for messages.
        overlap: ``error``: frames where one subject has two states at once are a problem;
            ``join``: they get the labels joined by ``|`` (sorted), the multi-label form.
        problems: report rows are appended here (events past the end, overlaps, start after stop).

    Returns:
        ``action`` first, then the other columns in order of appearance; ``""`` = unlabeled.
    """
    problems = problems if problems is not None else []
    n = len(times)
    cols = ["action"] + [c for c in dict.fromkeys(e.column for e in events) if c != "action"]
    backwards = [e for e in events if e.stop < e.start and not e.point]
    if backwards:
        e = backwards[0]
        problems.append(problem(source, f"{len(backwards)} event(s) stop before they start (first: {e.label!r} "
                                f"{e.start}-{e.stop} at {e.where})", "fix the start and stop of those events"))
        return {}
    spans = _spans(events, times)
    # a stop less than one frame after the end is the end (b == n); one more frame is past it
    beyond = [(e, s) for e, s in zip(events, spans) if s[0] >= n or s[1] > n]
    if beyond:
        e, s = beyond[0]
        problems.append(problem(source, f"{len(beyond)} event(s) reach past the video's end ({n} frames, "
                                f"{times[-1]:.3f} s at the last frame; first: {e.label!r} at {e.where} ends at frame "
                                f"{s[1] - 1})", "check that the annotations belong to this video and use its time "
                                "base (an offset or another frame rate shifts every event)"))
    out: dict[str, list[str]] = {}
    for col in cols:
        sets: list[set] = [set() for _ in range(n)]
        owner: list[dict] = [dict() for _ in range(n)]
        clash: dict[str, int] = {}
        for e, (a, b) in zip(events, spans):
            if e.column != col:
                continue
            for f in range(a, min(b, n)):
                prev = owner[f].get(e.subject)
                if prev is not None and prev != e.label:
                    key = f"{e.subject or 'no subject'}: {'+'.join(sorted({prev, e.label}))}"
                    clash[key] = clash.get(key, 0) + 1
                sets[f].add(e.label)
                owner[f][e.subject] = e.label
        many = sum(len(s) > 1 for s in sets)
        if many and overlap == "error":
            detail = ", ".join(f"{k} {v} frames" for k, v in sorted(clash.items())) or "labels of different subjects"
            problems.append(problem(source, f"{many} frame(s) of column {col!r} carry two or more labels at once "
                                    f"({detail})", "pass --overlap join to write them as a multi-label column "
                                    "(`groom|rear`), or import one subject at a time (--subject)", column=col))
        out[col] = ["|".join(sorted(s)) for s in sets]
    return out


def check_time_base(base: TimeBase, times: np.ndarray, fps: float, source: str, problems: list[dict]) -> None:
    """Errors when the file's frame rate, duration or frame count disagree with the video's."""
    n = len(times)
    step = float(np.median(np.diff(times))) if n > 1 else 1 / max(fps, 1e-9)
    duration = float(times[-1] + step) if n else 0.0
    if base.fps and abs(base.fps - fps) > 0.01 * fps:
        problems.append(problem(source, f"time base does not match the video: the file says {base.fps:g} frames/s, "
                                f"the video has {fps:g}", "export the annotations from this very video (a re-encoded "
                                "copy can have another frame rate)"))
    if base.duration and abs(base.duration - duration) > max(2 * step, 0.1):
        problems.append(problem(source, f"time base does not match the video: the file says it lasts "
                                f"{base.duration:.3f} s, the video {duration:.3f} s ({n} frames)",
                                "check that the annotations belong to this video (not a trimmed or re-encoded copy)"))
    if base.frames is not None and base.frames != n:
        problems.append(problem(source, f"the file counts {base.frames} frames, the video has {n}",
                                "annotate the whole video, or check that the file belongs to it"))

