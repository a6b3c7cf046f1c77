"""The text files of the MS-TCN layout: ``mapping.txt``, ``groundTruth/<vid>.txt`` and the split bundles.

Read the way :mod:`kit.data.mstcn` needs them: whole (a last line without its newline is kept, and
:func:`_warn_unterminated` says how upstream would read it), every problem collected with its file and line.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from kit.data.video import DataError, problem

log = logging.getLogger("kit")


def _warn_unterminated(root: Path, folds: dict, named: dict) -> None:
    """One warning, with counts, for text files whose last line has no newline.

    The kit reads that last line; MS-TCN's readers do not: ``batch_gen.py`` (``read_data``, ``next_batch``) and
    ``eval.py`` split the text on newlines and drop the last piece, so upstream would use one frame
    fewer of such a ground-truth file and one video fewer of such a bundle.
    """
    bundles = [root / "splits" / f"{s}.split{n}.bundle" for n in sorted(folds) for s in folds[n]]
    gts = [root / "groundTruth" / f"{stem}.txt" for stem in sorted(named)]
    short = {what: [p for p in paths if _no_final_newline(p)] for what, paths in
             (("ground-truth file", gts), ("bundle", bundles))}
    if not any(short.values()):
        return
    counts = " and ".join(f"{len(v)} {k}(s)" for k, v in short.items() if v)
    first = next(p for v in short.values() for p in v)
    log.warning(f"[warn] {counts} end without a final newline (e.g. {first}): the kit reads their last line; "
                "MS-TCN's readers (batch_gen.py, eval.py: split('\\n')[:-1]) drop it, so upstream would use one frame "
                "fewer per such ground-truth file and one video fewer per such bundle. Add the newline to make both agree")


def _no_final_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            if f.seek(0, 2) == 0:
                return False
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except OSError:
        return False


def _lines(path: Path, problems: list[dict]) -> list[str] | None:
    """Stripped lines without trailing blank ones (CRLF, BOM fine); a blank line inside is a problem."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problems.append(problem(path, f"not UTF-8 text ({e.reason} at byte {e.start})", "save it as UTF-8 text"))
        return None
    except OSError as e:
        problems.append(problem(path, f"cannot be read ({e.strerror})", "check the file's permissions"))
        return None
    lines = [s.strip() for s in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    blank = [i + 1 for i, s in enumerate(lines) if not s]
    if blank:
        problems.append(problem(path, f"blank line(s) {blank[:5]} inside the file", "delete them: MS-TCN's "
                                "readers take every line up to the last newline as an entry", row=blank[0]))
        return None
    return lines


def read_mapping(path: str | Path) -> list[str]:
    """The class names of a ``mapping.txt`` ("<id> <name>" per line, ids 0..K-1), in id order.

    Raises:
        DataError: naming the file, the line and the fix.
    """
    problems: list[dict] = []
    names = _read_mapping(Path(path), problems)
    if problems:
        raise DataError.of(problems)
    return names


def _read_mapping(path: Path, problems: list[dict]) -> list[str]:
    lines = _lines(path, problems)
    if lines is None:
        return []
    if not lines:
        problems.append(problem(path, "empty", 'write one "<id> <name>" line per class, ids 0..K-1'))
        return []
    before, ids, names = len(problems), {}, {}
    for i, s in enumerate(lines, 1):
        parts = s.split()
        if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[0]):
            hint = " (class names cannot contain spaces in this layout)" if len(parts) > 2 else ""
            problems.append(problem(path, f'{s[:60]!r} is not "<id> <name>"{hint}',
                                    'write "<integer id> <name>", e.g. "0 background"', row=i))
            continue
        k, name = int(parts[0]), parts[1]
        for seen, key, what in ((ids, k, "id"), (names, name, "name")):
            if key in seen:
                problems.append(problem(path, f"{what} {key!r} also on line {seen[key]}", f"give each class one "
                                        f"line with a unique {what}", row=i))
            seen.setdefault(key, i)
    if len(problems) > before:
        return []
    order = [int(s.split()[0]) for s in lines]
    if order != list(range(len(lines))):
        wrong = next(i for i, k in enumerate(order) if k != i)
        fix = ("sort the lines by id (MS-TCN indexes classes by id, DiffAct by line; they must agree)"
               if sorted(order) == list(range(len(order))) else f"number the classes 0..{len(order) - 1} in line order")
        problems.append(problem(path, f"line {wrong + 1} has id {order[wrong]}, expected {wrong} (ids must be "
                                "0..K-1 in order)", fix, row=wrong + 1))
        return []
    return [s.split()[1] for s in lines]


def _read_ground_truth(path: Path, index: dict[str, int] | None, problems: list[dict]) -> list[str] | None:
    lines = _lines(path, problems)
    if lines is None:
        return None
    if not lines:
        problems.append(problem(path, "empty: no frame labels", "write one label per frame, one per line"))
        return None
    bad = [] if index is None else [i for i, s in enumerate(lines) if s not in index]
    if bad:
        shown = ", ".join(f"line {i + 1}: {lines[i]!r}" for i in bad[:3])
        spaces = " (labels cannot contain spaces in this layout)" if any(" " in lines[i] for i in bad) else ""
        problems.append(problem(path, f"{len(bad)} label(s) not in mapping.txt{spaces}: {shown}",
                                "fix the label, or add the class to mapping.txt", row=bad[0] + 1))
        return None
    return lines


def _read_fold(splits: Path, n: int, named: dict, problems: list[dict]) -> dict[str, list[str]]:
    fold: dict[str, list[str]] = {}
    where: dict[str, tuple[str, int]] = {}
    for s in ("train", "val", "test"):
        path = splits / f"{s}.split{n}.bundle"
        if not path.is_file():
            if s != "val":
                problems.append(problem(path, "file not found", f"add it ({s} videos of fold {n}, one <vid>.txt "
                                        "per line)"))
            continue
        lines = _lines(path, problems)
        fold[s] = []
        if lines is None:
            continue
        if not lines and s != "val":
            problems.append(problem(path, "no videos", "list one <vid>.txt per line"))
        for i, name in enumerate(lines, 1):
            stem = name[:-4] if name.endswith(".txt") else name
            if stem in where:
                other, line = where[stem]
                problems.append(problem(path, f"{stem} is also on line {line} of {other}.split{n}.bundle",
                                        "keep each video in one split of a fold, once", row=i))
                continue
            where[stem] = (s, i)
            named.setdefault(stem, (path, i))
            fold[s].append(stem)
    return fold
