"""An editable set of labels for one video: segments per task, edits with undo, an atomic save that
never loses the annotation file it replaces.

This is the model behind :class:`kit.results.annotator.Annotator` (the widget's buttons call these
methods, tests drive them directly). A draft starts empty, from an annotation CSV (read through the
data contract, :func:`kit.data.load_records`) or from ``predict``'s frame table (``<stem>.csv`` with
``<task>`` and ``<task>_prob``), whose segments keep their mean probability so the widget can shade
the ones the model was unsure of.

Per task the draft holds segments ``(start, end, label, prob)``: frames ``start..end`` inclusive,
sorted, never overlapping; frames no segment covers are unlabeled. ``prob`` is the model's mean
probability of a predicted segment and ``None`` for a segment a person drew or relabelled (sure).
Two adjacent segments may carry the same label (after :meth:`LabelDraft.split`); a per-frame CSV
cannot tell them apart, so they become one when saved and read back.

:meth:`LabelDraft.save` writes ``frame,<task>,...`` per frame (empty cell = unlabeled), atomically.
An existing file is first copied to ``<root>/Annotations_backup/<stem>.<time>.csv`` (never
overwritten), and a file changed on disk since the draft read it is refused unless
``overwrite=True``. Keypoint columns (``kp<j>_x`` ...) of the file it replaces are carried over.

Legend: ``L`` frames of the video.
"""
from __future__ import annotations

import copy
import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kit.data.poses import _KP_COL
from kit.data.video import DataError
from kit.files import atomic_path
from kit.results.barcode import label_runs

__all__ = ["Segment", "LabelDraft", "BACKUP_DIR"]

BACKUP_DIR = "Annotations_backup"  # beside Annotations/: the contract never reads it


@dataclass(frozen=True)
class Segment:
    """Frames ``start..end`` (inclusive) of one task labelled ``label``; ``prob`` None = drawn by a person."""

    start: int
    end: int
    label: str
    prob: float | None = None

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


class LabelDraft:
    """Segments per task for a video of ``num_frames`` frames, with undo and redo.

    Args:
        num_frames: ``L``, frames of the video.
        classes: ``{task: [class names]}``: the tasks, in column order, and the classes offered for
            each (labels outside it are kept; the list only feeds the widget's buttons).
        fps: frames per second (times in :meth:`segments`).
        path: the annotation file this draft saves to (``Annotations/<stem>.csv``); may not exist yet.
    """

    def __init__(self, num_frames: int, classes: Mapping[str, Sequence[str]], fps: float = 25.0,
                 path: str | Path | None = None):
        if num_frames < 1:
            raise ValueError(f"a draft needs num_frames >= 1, got {num_frames}")
        if not classes:
            raise ValueError("a draft needs at least one task in classes, e.g. {'action': ['walk', 'run']}")
        self.num_frames, self.fps = int(num_frames), float(fps)
        self.classes = {t: [str(c) for c in cs] for t, cs in classes.items()}
        self.path = Path(path) if path is not None else None
        self._segs: dict[str, list[Segment]] = {t: [] for t in self.classes}
        self._undo: list[dict] = []
        self._redo: list[dict] = []
        self._read_digest = _digest(self.path) if self.path is not None else None

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def from_labels(cls, labels: Mapping[str, Sequence[str]], classes: Mapping[str, Sequence[str]] | None = None,
                    probs: Mapping[str, np.ndarray] | None = None, fps: float = 25.0,
                    path: str | Path | None = None) -> "LabelDraft":
        """A draft whose segments are the runs of per-frame labels (``""`` = unlabeled).

        Shapes:
            labels: ``{task: (L,) str}``; probs: ``{task: (L,)}`` probability of each frame's label.
        """
        lengths = {t: len(v) for t, v in labels.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"every task needs the same number of frames, got {lengths}")
        found = {t: sorted({str(x) for x in v} - {""}) for t, v in labels.items()}
        classes = {t: list(dict.fromkeys([*(classes or {}).get(t, []), *found[t]])) for t in labels}
        draft = cls(next(iter(lengths.values())), classes, fps, path)
        for task, vals in labels.items():
            vals = np.asarray([str(x) for x in vals], dtype=object)  # (L,)
            p = None if probs is None or task not in probs else np.asarray(probs[task], np.float64)
            if p is not None and p.shape != vals.shape:
                raise ValueError(f"probs[{task!r}] must be ({len(vals)},), got {p.shape}")
            starts, ends = label_runs(pd.factorize(vals)[0])
            draft._segs[task] = [Segment(int(s), int(e), vals[s], None if p is None else float(p[s:e + 1].mean()))
                                 for s, e in zip(starts, ends) if vals[s] != ""]
        return draft

    @classmethod
    def from_annotation(cls, data_root: str | Path, stem: str,
                        classes: Mapping[str, Sequence[str]] | None = None) -> "LabelDraft":
        """The draft of ``<data_root>/Annotations/<stem>.csv``, read through the data contract."""
        from kit.data.contract import load_records

        rec = load_records(data_root, stems=[stem])[0]
        return cls.from_labels(rec.labels, classes, fps=rec.fps or 25.0, path=rec.annotation_path)

    @classmethod
    def from_prediction(cls, frame_table: str | Path | pd.DataFrame, classes: Mapping[str, Sequence[str]] | None = None,
                        path: str | Path | None = None) -> "LabelDraft":
        """``predict``'s per-frame table (``<stem>.csv``: ``frame, time_s, <task>, <task>_prob``) as a draft.

        Args:
            frame_table: the table or its path.
            classes: classes to offer per task (the run's vocabulary); those predicted are added.
            path: where the corrected labels go (``<data_root>/Annotations/<stem>.csv``).
        """
        df = frame_table if isinstance(frame_table, pd.DataFrame) else pd.read_csv(
            frame_table, keep_default_na=False, na_filter=False)
        tasks = [c for c in df.columns if f"{c}_prob" in df.columns]
        if not tasks:
            raise DataError(f"{frame_table}: no <task>,<task>_prob columns: pass the <stem>.csv that predict wrote")
        fps = 1.0 / float(df["time_s"].iloc[1] - df["time_s"].iloc[0]) if "time_s" in df and len(df) > 1 else 25.0
        draft = cls.from_labels({t: df[t].astype(str).to_numpy() for t in tasks}, classes,
                                {t: df[f"{t}_prob"].to_numpy(np.float64) for t in tasks}, fps, path)
        draft._read_digest = None  # replacing an existing annotation with a corrected prediction needs overwrite=True
        return draft

    # --- reading --------------------------------------------------------------------------------
    @property
    def tasks(self) -> list[str]:
        return list(self._segs)

    def segs(self, task: str) -> list[Segment]:
        """The segments of ``task`` in time order (a copy)."""
        return list(self._checked_task(task))

    def segments(self) -> pd.DataFrame:
        """Every segment: ``task, segment, start_frame, end_frame`` (inclusive), ``start_s, end_s, label, prob``."""
        rows = [(t, i, s.start, s.end, s.start / self.fps, (s.end + 1) / self.fps, s.label, s.prob)
                for t in self._segs for i, s in enumerate(self._segs[t])]
        return pd.DataFrame(rows, columns=["task", "segment", "start_frame", "end_frame", "start_s", "end_s",
                                           "label", "prob"])

    def index_at(self, task: str, frame: int) -> int | None:
        """The index of the segment of ``task`` covering ``frame``; None when the frame is unlabeled."""
        for i, s in enumerate(self._checked_task(task)):
            if s.start <= frame <= s.end:
                return i
        return None

    def labels(self, task: str) -> np.ndarray:
        """Per-frame labels of ``task``, ``""`` where unlabeled.

        Shapes:
            returns: ``(L,)`` object array of str.
        """
        out = np.full(self.num_frames, "", dtype=object)
        for s in self._checked_task(task):
            out[s.start:s.end + 1] = s.label
        return out

    def probs(self, task: str) -> np.ndarray:
        """Per-frame shading of ``task``: the segment's probability, 1 for drawn segments, 0 where unlabeled.

        Shapes:
            returns: ``(L,)`` float32.
        """
        out = np.zeros(self.num_frames, np.float32)
        for s in self._checked_task(task):
            out[s.start:s.end + 1] = 1.0 if s.prob is None else s.prob
        return out

    def frame_table(self) -> pd.DataFrame:
        """What :meth:`save` writes: ``frame`` then one column per task, ``""`` where unlabeled."""
        return pd.DataFrame({"frame": np.arange(self.num_frames), **{t: self.labels(t) for t in self._segs}})

    # --- editing (each edit can be undone) ---------------------------------------------------------
    def draw(self, task: str, start: int, end: int, label: str) -> int:
        """Labels frames ``start..end`` (either order) ``label``; segments under it are cut away.

        Returns:
            the index of the new segment.
        """
        start, end = sorted((self._frame(start), self._frame(end)))
        if not str(label):
            raise ValueError("draw needs a label; erase frames with erase()")
        self._checkpoint()
        self._put(task, Segment(start, end, str(label)))
        if str(label) not in self.classes[task]:
            self.classes[task].append(str(label))
        return self.index_at(task, start)

    def erase(self, task: str, start: int, end: int) -> None:
        """Makes frames ``start..end`` unlabeled."""
        start, end = sorted((self._frame(start), self._frame(end)))
        self._checkpoint()
        self._segs[task] = self._cut(self._checked_task(task), start, end)

    def relabel(self, task: str, index: int, label: str) -> None:
        """Gives segment ``index`` the class ``label`` (it becomes a person's: no probability)."""
        s = self._seg(task, index)
        self.draw(task, s.start, s.end, label)

    def delete(self, task: str, index: int) -> None:
        """Removes segment ``index``: its frames become unlabeled."""
        s = self._seg(task, index)
        self.erase(task, s.start, s.end)

    def set_bounds(self, task: str, index: int, start: int | None = None, end: int | None = None) -> int:
        """Moves segment ``index``'s start and/or end; frames it gains are taken from its neighbours, frames
        it gives up become unlabeled. Returns its new index."""
        s = self._seg(task, index)
        start = s.start if start is None else self._frame(start)
        end = s.end if end is None else self._frame(end)
        if start > end:
            raise ValueError(f"segment {index} of {task!r} would end ({end}) before it starts ({start})")
        self._checkpoint()
        segs = self._cut(self._checked_task(task), s.start, s.end)
        self._segs[task] = segs
        self._put(task, Segment(start, end, s.label, s.prob))
        return self.index_at(task, start)

    def move_boundary(self, task: str, index: int, frame: int) -> None:
        """Moves the boundary between segment ``index`` and the next (touching) one: the next starts at ``frame``."""
        a, b = self._seg(task, index), self._seg(task, index + 1)
        if a.end + 1 != b.start:
            raise ValueError(f"segments {index} and {index + 1} of {task!r} do not touch (frames {a.end}, {b.start}): "
                             "use set_bounds")
        frame = self._frame(frame)
        if not a.start < frame <= b.end:
            raise ValueError(f"the boundary must stay inside frames {a.start + 1}..{b.end}, got {frame}")
        self._checkpoint()
        segs = self._checked_task(task)
        segs[index], segs[index + 1] = Segment(a.start, frame - 1, a.label, a.prob), Segment(frame, b.end, b.label,
                                                                                           b.prob)

    def move(self, task: str, index: int, delta: int) -> int:
        """Shifts segment ``index`` by ``delta`` frames (kept inside the video, same length); it overwrites
        what it lands on and leaves unlabeled frames behind. Returns its new index."""
        s = self._seg(task, index)
        delta = int(np.clip(delta, -s.start, self.num_frames - 1 - s.end))
        self._checkpoint()
        self._segs[task] = self._cut(self._checked_task(task), s.start, s.end)
        self._put(task, Segment(s.start + delta, s.end + delta, s.label, s.prob))
        return self.index_at(task, s.start + delta)

    def split(self, task: str, frame: int) -> int:
        """Splits the segment covering ``frame`` into ``..frame-1`` and ``frame..``; returns the second's index."""
        i = self.index_at(task, self._frame(frame))
        if i is None or self._segs[task][i].start == frame:
            raise ValueError(f"frame {frame} of {task!r} is not inside a segment (nothing to split)")
        s = self._segs[task][i]
        self._checkpoint()
        self._segs[task][i:i + 1] = [Segment(s.start, frame - 1, s.label, s.prob),
                                     Segment(frame, s.end, s.label, s.prob)]
        return i + 1

    def merge(self, task: str, index: int) -> None:
        """Joins segment ``index`` and the next into one with the first's label; a gap between them is filled."""
        a, b = self._seg(task, index), self._seg(task, index + 1)
        self._checkpoint()
        prob = None if a.prob is None or b.prob is None else (a.prob * a.frames + b.prob * b.frames) / (
            a.frames + b.frames)
        self._segs[task][index:index + 2] = [Segment(a.start, b.end, a.label, prob if a.label == b.label else None)]

    def undo(self) -> bool:
        """Takes back the last edit; False when there is none."""
        if not self._undo:
            return False
        self._redo.append(copy.deepcopy(self._segs))
        self._segs = self._undo.pop()
        return True

    def redo(self) -> bool:
        """Does again the last edit undone; False when there is none."""
        if not self._redo:
            return False
        self._undo.append(copy.deepcopy(self._segs))
        self._segs = self._redo.pop()
        return True

    # --- saving -----------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None, overwrite: bool = False) -> Path:
        """Writes the per-frame CSV atomically; an existing file is backed up first, never lost.

        Args:
            path: default: the file the draft was opened for.
            overwrite: replace a file that changed on disk since this draft read it (someone else's
                edit); it is still backed up.

        Returns:
            the path written. Raises :class:`FileExistsError` for a file changed since it was read.
        """
        path = Path(path) if path is not None else self.path
        if path is None:
            raise ValueError("this draft has no file: pass save(path), e.g. <data_root>/Annotations/<stem>.csv")
        digest = _digest(path)
        known = self._read_digest if path == self.path else None
        if digest is not None and digest != known and not overwrite:
            raise FileExistsError(f"{path} exists and is not the file this draft was opened from (or changed since): "
                                  "nothing written. Open it with LabelDraft.from_annotation, or save(overwrite=True) "
                                  f"(the old file is then kept in {path.parent.parent / BACKUP_DIR})")
        table = self.frame_table()
        if digest is not None:
            table = self._with_keypoints(path, table)
            self.backup(path)
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        self.path, self._read_digest = path, _digest(path)
        return path

    @staticmethod
    def backup(path: str | Path) -> Path:
        """Copies ``path`` to ``<root>/Annotations_backup/<stem>.<YYYYmmdd-HHMMSS>[-n].csv`` (a new name each time)."""
        path = Path(path)
        folder = path.parent.parent / BACKUP_DIR
        folder.mkdir(parents=True, exist_ok=True)
        stamp, n = time.strftime("%Y%m%d-%H%M%S"), 0
        while True:
            target = folder / f"{path.stem}.{stamp}{f'-{n}' if n else ''}{path.suffix}"
            try:
                with open(target, "xb") as dst, open(path, "rb") as src:
                    shutil.copyfileobj(src, dst)
                return target
            except FileExistsError:
                n += 1

    # --- internals --------------------------------------------------------------------------------
    def _checked_task(self, task: str) -> list[Segment]:
        if task not in self._segs:
            raise KeyError(f"no task {task!r} in this draft (tasks: {self.tasks})")
        return self._segs[task]

    def _seg(self, task: str, index: int) -> Segment:
        segs = self._checked_task(task)
        if not 0 <= index < len(segs):
            raise IndexError(f"{task!r} has {len(segs)} segment(s), no index {index}")
        return segs[index]

    def _frame(self, frame: int) -> int:
        if not 0 <= int(frame) < self.num_frames:
            raise ValueError(f"frame must be in 0..{self.num_frames - 1}, got {frame}")
        return int(frame)

    def _checkpoint(self) -> None:
        self._undo.append(copy.deepcopy(self._segs))
        self._redo.clear()

    @staticmethod
    def _cut(segs: list[Segment], start: int, end: int) -> list[Segment]:
        """``segs`` with frames ``start..end`` removed (segments overlapping them trimmed or split)."""
        out = []
        for s in segs:
            if s.end < start or s.start > end:
                out.append(s)
                continue
            if s.start < start:
                out.append(Segment(s.start, start - 1, s.label, s.prob))
            if s.end > end:
                out.append(Segment(end + 1, s.end, s.label, s.prob))
        return out

    def _put(self, task: str, seg: Segment) -> None:
        segs = self._cut(self._checked_task(task), seg.start, seg.end) + [seg]
        self._segs[task] = sorted(segs, key=lambda s: s.start)

    def _with_keypoints(self, path: Path, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` plus the ``kp<j>_*`` columns of the per-frame file it replaces (they are not labels)."""
        try:
            old = pd.read_csv(path, keep_default_na=False, na_filter=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            return table
        kp = [c for c in old.columns if _KP_COL.match(str(c))]
        if not kp or "frame" not in old.columns:
            return table
        return table.merge(old[["frame", *kp]], on="frame", how="left").fillna({c: "" for c in kp})
