"""The import itself: detect each file's format, match its videos, check, write the CSVs.

Legend: ``L`` frames in a video.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kit.data.label_formats.boris import is_boris, read_boris
from kit.data.label_formats.cvat import is_cvat, read_cvat
from kit.data.label_formats.elan import is_elan, read_elan
from kit.data.label_formats.segments import is_segments, read_segments
from kit.data.label_formats.timeline import check_time_base, frame_times, labels_of
from kit.data.video import VIDEO_EXTS, DataError, probe_video, problem, tool_folders, warning

log = logging.getLogger("kit")

__all__ = ["FORMATS", "ImportedVideo", "import_labels", "main_import"]

FORMATS = {  # name -> what it reads (the --help text)
    "boris": "BORIS 'Export events' (tabular: START/STOP/POINT rows) or 'Export aggregated events' (Start (s), "
             "Stop (s)), CSV or TSV",
    "elan": "ELAN .eaf: one tier's time-aligned annotations",
    "cvat": "CVAT for video 1.1 XML: tracks (per-frame shapes, attributes)",
    "segments": "segment JSON {video: {annotations: [{segment: [t0, t1], label}]}} (ActivityNet/THUMOS)",
}
_DETECT = (("elan", is_elan), ("cvat", is_cvat), ("segments", is_segments), ("boris", is_boris))


@dataclass
class ImportedVideo:
    """One annotation CSV the import wrote."""

    stem: str
    path: Path
    frames: int
    labeled: int  # frames with an action
    classes: list[str]


def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    for name, test in _DETECT:
        if test(path):
            return name
    raise DataError.of([problem(path, "not a format the kit imports", "pass --format (" + ", ".join(FORMATS)
                                + "); see python -m kit import-labels --help")])


def _stem_of(hint: str) -> str:
    name = re.split(r"[\\/]", hint.split(";")[0].split(":", 1)[-1] if hint.startswith("player #") else hint)[-1]
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in VIDEO_EXTS else name


def _match(hint: str, videos: dict[str, Path]) -> str | None:
    stem = _stem_of(hint)
    if stem in videos:
        return stem
    lower = {v.lower(): v for v in videos}
    for cand in (stem.lower(), f"v_{stem}".lower()):
        if cand in lower:
            return lower[cand]
    return None


def import_labels(files: list[str | Path], data_root: str | Path = "", videos: str | Path = "", out: str | Path = "",
                  fmt: str = "auto", subject: str | None = None, tier: str | None = None,
                  attribute: str | None = None, classes: list[str] | None = None, overlap: str = "error",
                  points: str = "skip", video: str | None = None, overwrite: bool = False) -> list[ImportedVideo]:
    """Converts annotation-tool files into ``<out>/<stem>.csv`` (per-frame ``frame,action[,...]``).

    Args:
        files: the exported files (any mix of formats).
        data_root: the dataset: videos from its ``Videos/``, CSVs into its ``Annotations/``.
        videos, out: explicit folders, overriding those under ``data_root``.
        fmt: ``auto`` (from each file) or one of :data:`FORMATS`.
        subject: BORIS: the subject to import (required when the export has several).
        tier: ELAN: the tier holding the behaviours.
        attribute: CVAT: take the label from this shape attribute instead of the track's label.
        classes: the known behaviours; any other is an error (counted per name). None = any.
        overlap: ``error`` or ``join`` (frames with several states get ``a|b``: a multi-label column).
        points: ``skip`` (warned, counted) or ``column`` (a column ``point_events``, one frame each).
        video: the video stem for a file that names none or another (a single-video file only).
        overwrite: replace existing annotation CSVs (else they are an error and nothing is written).

    Returns:
        one :class:`ImportedVideo` per CSV written.

    Raises:
        DataError: every problem of every file, before anything is written.
    """
    video_dir, out_dir = tool_folders(data_root, videos, out, "Annotations", "--out")
    if not video_dir.is_dir():
        raise DataError.of([problem(video_dir, "folder not found", "point --data_root or --videos at the videos")])
    vids = {p.stem: p for p in sorted(video_dir.iterdir()) if p.suffix.lower() in VIDEO_EXTS and p.name[0] != "."}
    problems: list[dict] = []
    todo: dict[str, tuple[Path, list]] = {}  # stem -> (source file, events)
    bases = {}
    for f in map(Path, files):
        if not f.is_file():
            problems.append(problem(f, "file not found", "check the path"))
            continue
        kind = _format_of(f, fmt)
        entries = {"boris": lambda: read_boris(f, subject, points, problems),
                   "elan": lambda: read_elan(f, tier, problems),
                   "cvat": lambda: read_cvat(f, attribute, problems),
                   "segments": lambda: read_segments(f, problems)}[kind]()
        if video is not None and len(entries) > 1:
            problems.append(problem(f, f"--video {video} given but the file holds {len(entries)} videos",
                                    "leave out --video: each video is matched by name"))
            continue
        missing = []
        for hint, events, base in entries:
            stem = video if video is not None else _match(hint or f.stem, vids)
            if stem is None or stem not in vids:
                missing.append(hint or f.stem)
                continue
            if stem in todo:
                problems.append(problem(f, f"video {stem} is annotated twice (also in {todo[stem][0]})",
                                        "import one file per video"))
                continue
            if not events:
                problems.append(problem(f, f"no events for video {stem}", "check the export (subject, tier, task)"))
                continue
            todo[stem] = (f, events)
            bases[stem] = base
        if missing:
            # a benchmark's JSON names thousands of videos, of which a dataset may hold some: a warning then
            some = len(missing) < len(entries)
            problems.append((warning if some else problem)(
                f, f"{len(missing)} of its {len(entries)} video(s) are not in {video_dir}"
                f"{' and are skipped' if some else ''} (first: {missing[0]!r}; videos there: "
                f"{', '.join(sorted(vids)[:6])}{' ...' if len(vids) > 6 else ''})",
                "put the videos there under those names, or pass --video STEM for a single-video file"))
    if classes is not None:
        known = set(classes)
        unknown: dict[str, int] = {}
        for stem, (f, events) in todo.items():
            for e in events:
                for lab in e.label.split("|"):
                    if lab not in known:
                        unknown[lab] = unknown.get(lab, 0) + 1
        if unknown:
            problems.append(problem(", ".join(str(f) for f, _ in todo.values()), f"{sum(unknown.values())} event(s) "
                                    f"of unknown behaviours: {dict(sorted(unknown.items()))} (known: "
                                    f"{', '.join(sorted(known))})", "add them to --classes, or fix their names in "
                                    "the annotation tool"))
    tables = {}
    for stem, (f, events) in sorted(todo.items()):
        target = out_dir / f"{stem}.csv"
        if target.exists() and not overwrite:
            problems.append(problem(target, "exists: the kit does not replace annotations it did not write",
                                    "pass --overwrite to replace it, or --out another folder"))
            continue
        times = frame_times(vids[stem])
        check_time_base(bases[stem], times, probe_video(vids[stem]).fps, str(f), problems)
        before = len(problems)
        cols = labels_of(events, times, f"{f} (video {stem})", overlap, problems)
        if len(problems) == before:
            tables[stem] = pd.DataFrame({"frame": range(len(times)), **cols})
    errors = [p for p in problems if p.get("level", "error") == "error"]
    if errors:
        raise DataError.of(errors)
    for p in problems:
        log.warning(f"[warn] {p['file']}: {p['problem']} ({p['fix']})")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for stem, df in tables.items():
        target = out_dir / f"{stem}.csv"
        tmp = target.with_name(target.name + ".partial")
        df.to_csv(tmp, index=False)
        os.replace(tmp, target)
        act = df["action"]
        done.append(ImportedVideo(stem, target, len(df), int((act != "").sum()), sorted(set(act) - {""})))
    return done


def main_import(argv: list[str] | None = None) -> int:
    """``python -m kit import-labels``."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m kit import-labels", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert annotation-tool exports into the kit's Annotations/<stem>.csv (per frame: frame,action), "
        "times to frames with each video's own frame timestamps. Formats (detected from each file, or --format):\n"
        + "\n".join(f"  {k:9s} {v}" for k, v in FORMATS.items())
        + "\nProblems (unknown behaviours, overlapping states, events past the video's end, a frame rate or duration "
        "that is not the video's, existing CSVs) are listed with counts and nothing is written.",
        epilog="Guide: docs/guides/label-import.md")
    p.add_argument("files", nargs="+", help="the exported annotation files")
    p.add_argument("--data_root", default="", help="folder with Videos/; CSVs are written to its Annotations/")
    p.add_argument("--videos", default="", help="the videos folder (overrides data_root/Videos)")
    p.add_argument("--out", default="", help="the folder to write CSVs to (overrides data_root/Annotations)")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="the files' format (default: auto)")
    p.add_argument("--subject", default=None, help="BORIS: the subject to import (required with several subjects)")
    p.add_argument("--tier", default=None, help="ELAN: the tier with the behaviours (default: `action`, or the only "
                   "time-aligned tier)")
    p.add_argument("--attribute", default=None, help="CVAT: label each frame with this shape attribute's value "
                   "instead of the track's label")
    p.add_argument("--classes", default=None, help="comma-separated known behaviours: any other is an error")
    p.add_argument("--overlap", default="error", choices=["error", "join"], help="frames with two states at once for "
                   "one subject: error (default), or join them as `a|b` (a multi-label column)")
    p.add_argument("--points", default="skip", choices=["skip", "column"], help="BORIS POINT events: skip (warned "
                   "with a count; default), or one frame each in a column point_events")
    p.add_argument("--video", default=None, help="the video stem of a single-video file whose media name differs")
    p.add_argument("--overwrite", action="store_true", help="replace existing annotation CSVs")
    a = p.parse_args(argv)
    done = import_labels(a.files, a.data_root, a.videos, a.out, a.format, a.subject, a.tier, a.attribute,
                         a.classes.split(",") if a.classes else None, a.overlap, a.points, a.video, a.overwrite)
    for d in done:
        print(f"{d.stem}: {d.frames} frames, {d.labeled} labeled, classes {', '.join(d.classes)} -> {d.path}")
    print(f"{len(done)} annotation CSV(s) written")
    return 0
