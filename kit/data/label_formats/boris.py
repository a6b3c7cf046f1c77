"""BORIS exports: tabular events (START/STOP/POINT rows) and aggregated events (Start/Stop rows).

Layouts, from BORIS's own exporter (olivierfriard/BORIS, ``boris/export_observation.py``):

- ``export_tabular_events``: one row per event with columns ``Observation id``, ``Observation
  date``, ``Description``, ``Observation duration``, ``Observation type``, ``Source``, ``Time offset
  (s)``, ``Media duration (s)``, ``FPS``, [independent variables], ``Subject``, ``Behavior``,
  ``Behavioral category``, [``Modifier #1`` ...], ``Behavior type`` (``START``/``STOP`` for state
  events, ``POINT``), ``Time`` (seconds), ``Media file name``, ``Image index``, ``Image file path``,
  ``Comment``.
- ``export_aggregated_events``: state events already paired, one row per bout: ... ``Subject``,
  ``Behavior``, ``Behavioral category``, [modifiers], ``Behavior type`` (``STATE``/``POINT``),
  ``Start (s)``, ``Stop (s)``, ``Duration (s)``, ``Media file name``, ...

Older BORIS versions (before 8) wrote the tabular export with a few lines of observation metadata
above the table and named two columns ``Status`` (START/STOP/POINT) and ``Media file path`` (the
header row is found by its columns, as the MATLAB reader ``loadBoris.m`` does); both are read too.
Both are read from CSV or TSV (BORIS also writes XLSX/ODS: save those as CSV). A state is labelled
on every frame from its START to its STOP; a POINT labels one frame (``points="column"``: column
``point_events``) or is skipped with a warning.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kit.data.label_formats.timeline import Event, TimeBase
from kit.data.video import problem, warning

__all__ = ["read_boris"]

TABULAR = ("Subject", "Behavior", "Behavior type", "Time")
AGGREGATED = ("Subject", "Behavior", "Behavior type", "Start (s)", "Stop (s)")


def is_boris(path: Path) -> bool:
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        return False
    try:
        head = _table(path, nrows=1)
    except Exception:  # noqa: BLE001 - not a table: another format
        return False
    return all(c in head.columns for c in TABULAR) or all(c in head.columns for c in AGGREGATED)


_OLD_NAMES = {"Status": "Behavior type", "Media file path": "Media file name"}  # BORIS < 8


def _header_line(path: Path) -> tuple[int, str]:
    """(0-based line of the header row, separator): the first of the first 50 lines naming Subject and Behavior."""
    with path.open(encoding="utf-8-sig") as f:
        for i, line in enumerate(f):
            if i >= 50:
                break
            sep = "\t" if "\t" in line else ","
            cells = [c.strip().strip('"') for c in line.rstrip("\n").split(sep)]
            if "Subject" in cells and "Behavior" in cells:
                return i, sep
    return 0, "\t" if path.suffix.lower() == ".tsv" else ","


def _table(path: Path, nrows: int | None = None) -> pd.DataFrame:
    skip, sep = _header_line(path)
    df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, nrows=nrows, encoding="utf-8-sig",
                     skiprows=skip)
    df.columns = [str(c).strip() for c in df.columns]
    df = df.rename(columns={k: v for k, v in _OLD_NAMES.items() if k in df.columns and v not in df.columns})
    df.attrs["first_line"] = skip + 2  # the file's line number of the first data row
    return df


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None  # "NA", several media ("25.000;30.000"), empty


def read_boris(path: Path, subject: str | None, points: str,
               problems: list[dict]) -> list[tuple[str, list[Event], TimeBase]]:
    """``[(media file, events, time base)]``, one per observation and media file of the export."""
    df = _table(path)
    aggregated = all(c in df.columns for c in AGGREGATED)
    first = df.attrs["first_line"]
    lines = pd.Series(range(first, len(df) + first), index=df.index)  # line numbers as an editor shows them
    subjects = sorted(set(df["Subject"]))
    if subject is not None:
        if subject not in subjects:
            problems.append(problem(path, f"no subject {subject!r} (subjects: {', '.join(map(repr, subjects))})",
                                    "pass one of these to --subject", column="Subject"))
            return []
        dropped = int((df["Subject"] != subject).sum())
        df = df[df["Subject"] == subject]
        if dropped:
            problems.append(warning(path, f"{dropped} row(s) of other subjects left out (--subject {subject})",
                                    "import them with another --subject into another folder", column="Subject"))
    elif len(subjects) > 1:
        problems.append(problem(path, f"{len(subjects)} subjects ({', '.join(map(repr, subjects))}): the kit "
                                "labels one per annotation file", "pass --subject NAME (one import per subject)",
                                column="Subject"))
        return []
    if "Time offset (s)" in df.columns:
        off = {_number(v) for v in df["Time offset (s)"]} - {None, 0.0}
        if off:
            problems.append(problem(path, f"the observation has a time offset ({', '.join(map(str, sorted(off)))} s): "
                                    "the export's times are not media times", "set the time offset to 0 in BORIS "
                                    "and export again", column="Time offset (s)"))
            return []
    obs = df["Observation id"] if "Observation id" in df.columns else pd.Series("", index=df.index)
    media = df["Media file name"] if "Media file name" in df.columns else pd.Series("", index=df.index)
    out = []
    for (o, m), rows in df.groupby([obs, media], sort=False):
        base = TimeBase(fps=_number(rows["FPS"].iloc[0]) if "FPS" in rows else None,
                        duration=_number(rows["Media duration (s)"].iloc[0]) if "Media duration (s)" in rows else None)
        events = (_aggregated if aggregated else _tabular)(path, rows, lines, points, problems)
        out.append((m or o, events, base))
    return out


def _event(label, a, b, subject, point, where, points) -> Event:
    return Event(label, a, b, "s", subject, point, where, "point_events" if point and points == "column" else "action")


def _tabular(path, rows, lines, points, problems) -> list[Event]:
    events: list[Event] = []
    open_: dict = {}
    bad, unpaired, skipped = [], [], 0
    mods = [c for c in rows.columns if c.startswith("Modifier #")]
    for i, r in rows.iterrows():
        kind, t = r["Behavior type"].strip().upper(), _number(r["Time"])
        where = f"{path.name} line {lines[i]}"
        if t is None or kind not in ("START", "STOP", "POINT"):
            bad.append(lines[i])
            continue
        key = (r["Subject"], r["Behavior"], tuple(r[c] for c in mods))
        if kind == "POINT":
            if points == "skip":
                skipped += 1
            else:
                events.append(_event(r["Behavior"], t, t, r["Subject"], True, where, points))
        elif kind == "START":
            if key in open_:
                unpaired.append(lines[i])
            open_[key] = (t, where)
        elif key not in open_:
            unpaired.append(lines[i])
        else:
            t0, w0 = open_.pop(key)
            events.append(_event(r["Behavior"], t0, t, r["Subject"], False, w0, points))
    unpaired += [int(w.rsplit(" ", 1)[1]) for _, w in open_.values()]
    if bad:
        problems.append(problem(path, f"{len(bad)} row(s) without a number in Time or START/STOP/POINT in Behavior "
                                f"type (lines {sorted(bad)[:5]})", "export the events again from BORIS", bad[0]))
    if unpaired:
        problems.append(problem(path, f"{len(unpaired)} START/STOP row(s) without their partner (lines "
                                f"{sorted(unpaired)[:5]})", "stop every state event in BORIS (Observations > "
                                "Check state events) and export again", min(unpaired)))
    if skipped:
        problems.append(warning(path, f"{skipped} POINT event(s) skipped", "pass --points column to write them "
                                "into a column point_events"))
    return events


def _aggregated(path, rows, lines, points, problems) -> list[Event]:
    events, bad, skipped = [], [], 0
    for i, r in rows.iterrows():
        kind = r["Behavior type"].strip().upper()
        a, b = _number(r["Start (s)"]), _number(r["Stop (s)"])
        if a is None or kind not in ("STATE", "POINT") or (kind == "STATE" and b is None):
            bad.append(lines[i])
            continue
        if kind == "POINT" and points == "skip":
            skipped += 1
            continue
        events.append(_event(r["Behavior"], a, b if b is not None else a, r["Subject"], kind == "POINT",
                             f"{path.name} line {lines[i]}", points))
    if bad:
        problems.append(problem(path, f"{len(bad)} row(s) without numbers in Start (s)/Stop (s) or STATE/POINT in "
                                f"Behavior type (lines {sorted(bad)[:5]})", "export the aggregated events again",
                                bad[0]))
    if skipped:
        problems.append(warning(path, f"{skipped} POINT event(s) skipped", "pass --points column to write them "
                                "into a column point_events"))
    return events
