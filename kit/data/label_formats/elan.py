"""ELAN ``.eaf`` files: time-aligned annotations on tiers.

Layout, from the EAF schema (``http://www.mpi.nl/tools/elan/EAFv3.0.xsd``): ``ANNOTATION_DOCUMENT``
holds a ``HEADER`` (``MEDIA_DESCRIPTOR`` with ``MEDIA_URL``, ``RELATIVE_MEDIA_URL`` and an optional
``TIME_ORIGIN``, ELAN's media offset in milliseconds: the media time at annotation time 0), a
``TIME_ORDER`` of ``TIME_SLOT``\\ s (``TIME_SLOT_ID``, ``TIME_VALUE`` in milliseconds; a slot may
lack a value when it is not aligned), and ``TIER``\\ s (``TIER_ID``, ``PARENT_REF``) of
``ANNOTATION`` elements. An ``ALIGNABLE_ANNOTATION`` spans ``TIME_SLOT_REF1`` to ``TIME_SLOT_REF2``
and holds its label in ``ANNOTATION_VALUE``; a ``REF_ANNOTATION`` only refers to another annotation
(symbolic tiers) and has no time of its own.

One tier becomes the ``action`` column: ``tier=NAME``, else the tier named ``action``, else the only
tier with aligned annotations.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from kit.data.label_formats.timeline import Event, TimeBase
from kit.data.video import problem, warning

__all__ = ["read_elan"]


def is_elan(path: Path) -> bool:
    return path.suffix.lower() == ".eaf"


def read_elan(path: Path, tier: str | None, problems: list[dict]) -> list[tuple[str, list[Event], TimeBase]]:
    """``[(media file, events of the chosen tier, time base)]`` (one media file per .eaf)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        problems.append(problem(path, f"not readable XML ({e})", "save it again from ELAN"))
        return []
    if root.tag != "ANNOTATION_DOCUMENT":
        problems.append(problem(path, f"not an ELAN file (root element {root.tag}, expected ANNOTATION_DOCUMENT)",
                                "pass an .eaf file saved by ELAN"))
        return []
    md = root.find("HEADER/MEDIA_DESCRIPTOR")
    media = "" if md is None else (md.get("RELATIVE_MEDIA_URL") or md.get("MEDIA_URL") or "")
    origin = float(md.get("TIME_ORIGIN", 0)) if md is not None else 0.0
    slots = {s.get("TIME_SLOT_ID"): s.get("TIME_VALUE") for s in root.iter("TIME_SLOT")}
    tiers = {t.get("TIER_ID"): t for t in root.findall("TIER")}
    aligned = [k for k, t in tiers.items() if t.find("ANNOTATION/ALIGNABLE_ANNOTATION") is not None]
    if tier is None:
        tier = "action" if "action" in aligned else aligned[0] if len(aligned) == 1 else None
        if tier is None:
            problems.append(problem(path, f"{len(aligned)} tiers with time-aligned annotations "
                                    f"({', '.join(map(repr, aligned))}): which one holds the behaviours?",
                                    "pass --tier NAME (or name that tier `action`)"))
            return []
    if tier not in tiers:
        problems.append(problem(path, f"no tier {tier!r} (tiers: {', '.join(map(repr, tiers))})",
                                "pass one of these to --tier"))
        return []
    events, unaligned = [], 0
    for a in tiers[tier].iter("ALIGNABLE_ANNOTATION"):
        t0, t1 = slots.get(a.get("TIME_SLOT_REF1")), slots.get(a.get("TIME_SLOT_REF2"))
        if t0 is None or t1 is None:
            unaligned += 1
            continue
        value = (a.findtext("ANNOTATION_VALUE") or "").strip()
        # TIME_ORIGIN is ELAN's media offset: the media time shown at annotation time 0 (the player sets
        # mediaDescriptor.timeOrigin = offset), so media time = annotation time + TIME_ORIGIN
        events.append(Event(value, (float(t0) + origin) / 1000, (float(t1) + origin) / 1000, "s", tier, False,
                            f"{path.name} annotation {a.get('ANNOTATION_ID')}"))
    if origin:
        problems.append(warning(path, f"the media has an offset (TIME_ORIGIN {origin:g} ms): media time = annotation "
                                "time + offset", "check one event against the video (notebook 01's frame scrubber)"))
    if unaligned:
        problems.append(problem(path, f"{unaligned} annotation(s) of tier {tier!r} have an unaligned time slot "
                                "(no TIME_VALUE)", "align them in ELAN and save again"))
    empty = [e for e in events if not e.label]
    if empty:
        problems.append(warning(path, f"{len(empty)} annotation(s) of tier {tier!r} have no value: those frames "
                                "stay unlabeled", "type a label into them in ELAN"))
        events = [e for e in events if e.label]
    return [(media, events, TimeBase())]
