"""Writing a dataset in the MS-TCN layout (see :mod:`kit.data.mstcn`) for the ``action`` task.

``write_mstcn_layout`` checks everything first and writes nothing on a problem. The files it
writes are those every reader of the field expects: each text file ends with a newline (MS-TCN
reads ``read().split('\\n')[:-1]``, which drops the last line when it has none), bundles list
``<vid>.txt`` (MS-TCN opens ``groundTruth/<line>``; DiffAct cuts the line at its first dot, so a
video name may not contain one), labels and video names contain no whitespace.

The folder it writes into holds a marker (``.kit_mstcn_export.json``) listing the kit's files: a
new export may replace a folder the kit made (its old files that the new one lacks are removed),
never a folder holding anything else. Sources are only read: feature files are copied.

Legend: ``D`` feature width, ``T`` frames of a video.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from kit.data.contract import VideoRecord
from kit.data.mstcn import MAX_ALIGN_FRAMES
from kit.data.video import DataError, problem

log = logging.getLogger("kit")

MARKER = ".kit_mstcn_export.json"
SPLITS = ("train", "val", "test")


def kfold_splits(stems: Sequence[str], k: int, seed: int = 0,
                 val_fraction: float = 0.0) -> list[dict[str, list[str]]]:
    """``k`` folds by video: every video is in exactly one test fold; seeded, independent of input order.

    Args:
        stems: the videos.
        k: folds (2 <= k <= number of videos); 4 for Breakfast and GTEA, 5 for 50Salads.
        val_fraction: moves this fraction of each fold's training videos to its ``val`` (the
            field's bundles have none; the kit uses it to pick the best epoch).

    Returns:
        ``[{"train": stems, "val": stems, "test": stems}, ...]``, fold ``i`` written as ``split<i+1>``.
    """
    stems = sorted(stems)
    if len(set(stems)) != len(stems):
        raise ValueError(f"kfold_splits: videos named twice: {sorted({s for s in stems if stems.count(s) > 1})[:5]}")
    if not 2 <= k <= len(stems):
        raise ValueError(f"kfold_splits: k={k} folds need 2 <= k <= {len(stems)} (the number of videos)")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"kfold_splits: val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)  # PCG64: the same folds on every platform
    chunks = np.array_split(rng.permutation(len(stems)), k)
    folds = []
    for i in range(k):
        test = sorted(stems[j] for j in chunks[i])
        train = [s for s in stems if s not in set(test)]
        n_val = min(round(len(train) * val_fraction), len(train) - 1)
        val = sorted(train[j] for j in rng.permutation(len(train))[:n_val])
        folds.append({"train": [s for s in train if s not in set(val)], "val": val, "test": test})
    return folds


def write_mstcn_layout(out: str | Path, records: Sequence[VideoRecord], vocab: Mapping | Sequence[str],
                       folds: Sequence[Mapping[str, Sequence[str]]],
                       features: Callable[[str], str | Path | np.ndarray], unlabeled_as: str = "") -> Path:
    """Writes ``features/``, ``groundTruth/``, ``mapping.txt`` and ``splits/`` for the ``action`` labels.

    Args:
        out: the folder to write; new, empty, or written by this function before.
        records: the videos; each needs ``labels["action"]`` (one name per frame, "" = unlabeled).
        vocab: the class names in id order, as ``{"action": [...]}`` (the kit's vocab) or a list.
        folds: ``[{"train": stems, "val": stems, "test": stems}, ...]``; fold ``i`` becomes
            ``train.split<i+1>.bundle`` etc. (``val`` only when not empty). See :func:`kfold_splits`.
        features: ``stem -> path of a (D, T) .npy`` (copied byte for byte) or ``(D, T)`` array.
            ``T`` must equal the record's frame count; a file up to ``MAX_ALIGN_FRAMES`` longer
            is written cut to it (a new file; the source is never modified).
        unlabeled_as: the class name given to unlabeled frames (appended to mapping.txt when not in
            ``vocab``); "" refuses videos with unlabeled frames, naming them.

    Returns:
        ``out`` as a Path.

    Raises:
        DataError: listing every problem; nothing is written then.
    """
    out = Path(out)
    names = list(vocab["action"] if isinstance(vocab, Mapping) else vocab)
    problems: list[dict] = []
    old = _kit_files(out, problems)
    _check_names(names, unlabeled_as, problems)
    classes = names + ([unlabeled_as] if unlabeled_as and unlabeled_as not in names else [])
    labels = _check_records(records, classes, unlabeled_as, problems)
    _check_folds(folds, [r.stem for r in records], problems)
    sources = {r.stem: _check_features(r, features, problems) for r in records}
    if problems:
        raise DataError.of(problems)

    files = ["mapping.txt"] + [f"groundTruth/{r.stem}.txt" for r in records] + \
            [f"features/{r.stem}.npy" for r in records] + \
            [f"splits/{s}.split{i + 1}.bundle" for i, f in enumerate(folds) for s in SPLITS if f.get(s)]
    out.mkdir(parents=True, exist_ok=True)
    _write_marker(out, sorted(set(old) | set(files)))  # a crash from here on leaves only files the marker lists
    for d in ("features", "groundTruth", "splits"):
        (out / d).mkdir(exist_ok=True)
    _write_lines(out / "mapping.txt", [f"{i} {c}" for i, c in enumerate(classes)])
    for r in records:
        _write_lines(out / "groundTruth" / f"{r.stem}.txt", labels[r.stem])
        _write_features(sources[r.stem], out / "features" / f"{r.stem}.npy", r.num_frames)
    for i, fold in enumerate(folds):
        for s in SPLITS:
            if fold.get(s):
                _write_lines(out / "splits" / f"{s}.split{i + 1}.bundle", [f"{v}.txt" for v in fold[s]])
    for stale in sorted(set(old) - set(files)):
        (out / stale).unlink(missing_ok=True)
    _write_marker(out, files)
    log.info(f"[info] Wrote the MS-TCN layout to {out}: {len(records)} videos, {len(classes)} classes, "
             f"{len(folds)} fold(s)")
    return out


# --- checks ----------------------------------------------------------------------------------
def _kit_files(out: Path, problems: list[dict]) -> list[str]:
    """The files a previous export listed; a problem when ``out`` holds anything else."""
    if not out.exists():
        return []
    if not out.is_dir():
        problems.append(problem(out, "exists and is not a folder", "choose a new folder to export to"))
        return []
    if not (out / MARKER).is_file():
        inside = sorted(p.name for p in out.iterdir())
        if inside:
            problems.append(problem(out, f"not empty and not written by kit (no {MARKER}; it holds {inside[:3]})",
                                    "choose a new or empty folder: kit never overwrites files it did not write"))
        return []
    try:
        listed = [str(p) for p in json.loads((out / MARKER).read_text())["files"]]
        if any(Path(p).is_absolute() or ".." in Path(p).parts for p in listed):
            raise ValueError("a path outside the folder")
    except (ValueError, KeyError, TypeError):
        problems.append(problem(out / MARKER, "unreadable marker", "choose a new folder to export to"))
        return []
    present = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != MARKER)
    foreign = [p for p in present if p not in set(listed)]
    if foreign:
        problems.append(problem(out, f"holds files kit did not write: {foreign[:5]}", "move them away or choose a "
                                "new folder: kit never overwrites or deletes files it did not write"))
    return [p for p in listed if (out / p).is_file()]


def _bad_name(name: str) -> bool:
    return not name or any(c.isspace() for c in name)


def _check_names(names: list[str], unlabeled_as: str, problems: list[dict]) -> None:
    bad = [c for c in names if _bad_name(str(c))]
    if bad:
        problems.append(problem("vocab", f"class names empty or with whitespace: {bad[:5]}", "rename them (e.g. "
                                "spaces to underscores): mapping.txt and the result files split on whitespace"))
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        problems.append(problem("vocab", f"class names listed twice: {dup[:5]}", "list each class once"))
    if not names and not unlabeled_as:
        problems.append(problem("vocab", "no classes", "pass the class names in id order"))
    if unlabeled_as and _bad_name(unlabeled_as):
        problems.append(problem("unlabeled_as", f"{unlabeled_as!r} contains whitespace", "choose a name without "
                                "spaces, e.g. background"))


def _check_records(records, classes: list[str], unlabeled_as: str, problems: list[dict]) -> dict[str, list[str]]:
    known, out, unlabeled, unknown = set(classes), {}, [], {}
    stems = [r.stem for r in records]
    for stem in sorted({s for s in stems if stems.count(s) > 1}):
        problems.append(problem(stem, "two records with this name", "keep one record per video"))
    for r in records:
        if _bad_name(r.stem) or "." in r.stem or "/" in r.stem or "\\" in r.stem:
            problems.append(problem(r.annotation_path, f"video name {r.stem!r} contains whitespace, a dot or a "
                                    "slash", "rename the video: MS-TCN and DiffAct cut names at the first dot"))
        labels = [str(v) for v in r.labels.get("action", [])]
        if len(labels) != r.num_frames:
            problems.append(problem(r.annotation_path, f"{len(labels)} action labels for {r.num_frames} frames",
                                    "give one action label per frame"))
        if "" in labels:
            if unlabeled_as:
                labels = [v or unlabeled_as for v in labels]
            else:
                unlabeled.append(f"{r.stem} ({labels.count('')} frames)")
        for v in sorted(set(labels) - known - {""}):
            unknown.setdefault(v, []).append(r.stem)
        out[r.stem] = labels
    if unlabeled:
        problems.append(problem(records[0].annotation_path.parent if records else "records",
                                f"unlabeled frames in {len(unlabeled)} video(s): {', '.join(unlabeled[:5])}",
                                "this layout labels every frame: pass unlabeled_as='background' (or another class "
                                "name) to map them to a class, or label those frames"))
    for v, where in unknown.items():
        problems.append(problem(where[0], f"label {v!r} (in {len(where)} video(s): {where[:3]}) is not in the vocab",
                                "add it to the vocab, or fix the label"))
    return out


def _check_folds(folds, stems: list[str], problems: list[dict]) -> None:
    if not folds:
        problems.append(problem("folds", "no folds", "pass at least one {'train': [...], 'test': [...]} "
                                "(kfold_splits makes k of them)"))
    known = set(stems)
    for i, fold in enumerate(folds, 1):
        extra = sorted(set(fold) - set(SPLITS))
        if extra:
            problems.append(problem(f"fold {i}", f"unknown split name(s) {extra}", "use train, val and test"))
        for s in ("train", "test"):
            if not fold.get(s):
                how = (": export with --folds K (K >= 2 seeded folds by video), raise --test_fraction (the kit's own "
                       "split), or add `test` rows to splits.csv") if s == "test" else ""
                problems.append(problem(f"fold {i}", f"no {s} videos", f"give fold {i} some {s} videos{how}"))
        seen: dict[str, str] = {}
        for s in SPLITS:
            for v in fold.get(s, []):
                if v not in known:
                    problems.append(problem(f"fold {i}", f"{s} names {v!r}, which is not among the records",
                                            "pass its record, or drop it from the fold"))
                elif v in seen:
                    problems.append(problem(f"fold {i}", f"{v} is in {seen[v]} and {s}", "put each video in one "
                                            "split of a fold, once"))
                seen.setdefault(v, s)


def _check_features(r: VideoRecord, features, problems: list[dict]):
    """The source (a Path or an array) when it is a (D, T) float array with T = the record's frames."""
    try:
        src = features(r.stem)
    except (KeyError, FileNotFoundError, OSError) as e:
        problems.append(problem(r.stem, f"no features ({type(e).__name__}: {e})", "extract this video's features"))
        return None
    where = src if isinstance(src, (str, Path)) else f"features of {r.stem}"
    try:
        a = np.load(src, mmap_mode="r", allow_pickle=False) if isinstance(src, (str, Path)) else np.asarray(src)
    except (ValueError, OSError, EOFError) as e:
        problems.append(problem(where, f"not a readable .npy array ({e})", "extract this video's features again"))
        return None
    if not isinstance(a, np.ndarray):  # np.load opens an .npz archive whatever its name
        a.close()
        problems.append(problem(where, "an .npz archive, not a .npy array", "save the (D, T) array with numpy.save"))
    elif a.ndim != 2 or a.dtype.kind != "f":
        problems.append(problem(where, f"{a.ndim}-D {a.dtype} array of shape {a.shape}", "give a float (D, T) array"))
    elif not r.num_frames <= a.shape[1] <= r.num_frames + MAX_ALIGN_FRAMES:
        problems.append(problem(where, f"{a.shape[1]} frames (columns of (D, T) = {a.shape}), but {r.stem} has "
                                f"{r.num_frames} labelled frames", "give one feature column per frame"))
    elif not isinstance(src, (str, Path)) and not np.isfinite(a).all():
        problems.append(problem(where, "NaN or inf in the features", "extract this video's features again"))
    else:
        return Path(src) if isinstance(src, (str, Path)) else a
    return None


# --- writing ---------------------------------------------------------------------------------
def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(f"{s}\n" for s in lines))  # "\n" after the last line too: MS-TCN drops it otherwise


def _write_features(src, dst: Path, n: int) -> None:
    if isinstance(src, Path):
        if dst.exists() and dst.samefile(src):
            return
        a = np.load(src, mmap_mode="r", allow_pickle=False)
        if a.shape[1] == n:
            shutil.copyfile(src, dst)  # byte for byte
            return
        src = a[:, :n]  # a longer file: its first n frames, in a new file
    np.save(dst, np.ascontiguousarray(src))


def _write_marker(out: Path, files: list[str]) -> None:
    (out / MARKER).write_text(json.dumps({"written_by": "kit.data.mstcn_export", "files": files}, indent=1) + "\n")
