"""CVAT "for video 1.1" XML: tracks of shapes, one per object, frame by frame.

Layout, from CVAT's XML format documentation (docs.cvat.ai, "XML annotation format", version 1.1,
interpolation mode): ``<annotations>`` holds ``<version>1.1</version>``, ``<meta><task>`` (``<size>``
frames, ``<mode>interpolation</mode>``, ``<start_frame>``, ``<stop_frame>``, ``<frame_filter>``,
``<labels><label><name>``, ``<original_size>``; a project export has ``<meta><project>`` and one
task per video with its ``<source>``) and ``<track id label source [task_id]>`` elements whose
children are shapes (``box``, ``polygon``, ``polyline``, ``points``, ``ellipse``, ``cuboid``,
``skeleton``, ``mask``) with ``frame``, ``outside``, ``occluded``, ``keyframe`` and child
``<attribute name="...">value</attribute>`` elements.

A track shows its object from its first shape until a shape with ``outside="1"`` (or the end of
the task): those frames get the track's label, or with ``attribute=NAME`` the value of that
attribute on the frame (carried from the last shape that has it). Frames count from the task's
``start_frame``; a ``frame_filter`` step other than 1 is refused.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from kit.data.label_formats.timeline import Event, TimeBase
from kit.data.video import problem

__all__ = ["read_cvat"]

SHAPES = ("box", "polygon", "polyline", "points", "ellipse", "cuboid", "skeleton", "mask")


def is_cvat(path: Path) -> bool:
    if path.suffix.lower() != ".xml":
        return False
    try:
        for _, el in ET.iterparse(path, events=("start",)):
            return el.tag == "annotations"
    except ET.ParseError:
        return False
    return False


def _int(el, tag, default=None):
    v = el.findtext(tag) if el is not None else None
    return int(v) if v not in (None, "") else default


def read_cvat(path: Path, attribute: str | None, problems: list[dict]) -> list[tuple[str, list[Event], TimeBase]]:
    """``[(video, events, time base)]``: one entry per task of the export."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        problems.append(problem(path, f"not readable XML ({e})", "export the annotations again from CVAT"))
        return []
    if root.findtext("version", "").strip() != "1.1":
        problems.append(problem(path, f"CVAT XML version {root.findtext('version')!r}, the kit reads 1.1",
                                "export with the format `CVAT for video 1.1`"))
        return []
    images = root.findall("image")
    if images and not root.findall("track"):
        problems.append(problem(path, "a `CVAT for images` export (per-image shapes, no tracks)",
                                "export with the format `CVAT for video 1.1`"))
        return []
    tasks = root.findall("meta/task") + root.findall("meta/project/tasks/task")
    labels = {lab.findtext("name") or "" for lab in root.findall(".//labels/label")}
    out = []
    for task in tasks or [None]:
        tid = task.findtext("id") if task is not None else None
        filt = (task.findtext("frame_filter") or "") if task is not None else ""
        step = re.fullmatch(r"\s*step\s*=\s*(\d+)\s*", filt)
        if filt.strip() and (not step or step.group(1) != "1"):
            problems.append(problem(path, f"task {tid}: frame_filter {filt!r}: its frames are "
                                    "not the video's", "annotate a task with every frame (no frame step)"))
            continue
        first = _int(task, "start_frame", 0)
        size = _int(task, "size")
        end = size if size is not None else None
        tracks = [t for t in root.findall("track") if len(tasks) <= 1 or t.get("task_id") == tid]
        events, unknown = [], {}
        for tr in tracks:
            shapes = sorted((s for s in tr if s.tag in SHAPES), key=lambda s: int(s.get("frame")))
            if not shapes:
                continue
            label = tr.get("label", "")
            if labels and label not in labels:
                unknown[label] = unknown.get(label, 0) + 1
            value = label
            for s, nxt in zip(shapes, shapes[1:] + [None]):
                if attribute is not None:
                    got = [a.text for a in s.findall("attribute") if a.get("name") == attribute]
                    value = (got[0] or "").strip() if got else (value if value != label else "")
                if s.get("outside", "0") == "1" or not value:
                    continue
                a = int(s.get("frame"))
                b = int(nxt.get("frame")) if nxt is not None else (end if end is not None else a + 1)
                events.append(Event(value, a - first, b - first, "frame", f"track {tr.get('id')}", False,
                                    f"{path.name} track {tr.get('id')} frame {a}"))
        if unknown:
            problems.append(problem(path, f"task {tid}: {sum(unknown.values())} track(s) with labels not in the "
                                    f"task's label list: {unknown}", "add the labels to the task in CVAT, or fix "
                                    "the tracks' labels"))
        source = (task.findtext("source") or task.findtext("name") or "") if task is not None else ""
        out.append((source, events, TimeBase(frames=size)))
    return out
