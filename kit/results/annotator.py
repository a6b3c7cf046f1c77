"""A labelling widget for notebooks: frame scrubber, class buttons, a timeline of segments, undo, save.

:class:`Annotator` wraps a :class:`kit.results.draft.LabelDraft` and one video. Every button calls a
method of its Python API (:meth:`~Annotator.goto`, :meth:`~Annotator.mark`, :meth:`~Annotator.label`,
:meth:`~Annotator.split`, ...), so a test or a script drives exactly what a person clicks. The widget
itself (:meth:`Annotator.widget`) is built only when asked: ipywidgets is imported there.

How to label: go to where an action starts, press **mark**, go to where it ends, press its class:
frames mark..here get that class (what was under it is cut away). Without a mark a class button
relabels the segment under the cursor. **split** / **merge next** / **delete** / **start here** /
**end here** / **move** edit the segment under the cursor of the chosen task; **undo** / **redo**;
**save** writes ``Annotations/<stem>.csv`` (see :meth:`LabelDraft.save`: atomic, the old file backed up).

Only the frame shown is decoded (a seek and a short decode, :func:`kit.data.video.read_frames`), with
the last few kept: a video of any length costs the same memory. The timelines are drawn with numpy
(one pixel column samples one frame), so a 30-minute video redraws as fast as a short one: an
overview of the whole video and a zoom of ``zoom_frames`` around the cursor, a segment's colour paler
the lower its probability (predicted drafts), unlabeled frames grey, the cursor black, the mark red.

Legend: ``L`` frames, ``W`` timeline width in pixels, ``R`` timeline rows (tasks).
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from kit.data.resize import Resize
from kit.data.video import VIDEO_EXTS, DataError, probe_video, read_frames
from kit.results.draft import LabelDraft
from kit.results.plots import class_colors

__all__ = ["Annotator", "timeline_image", "find_video", "annotation_classes"]

UNLABELED_RGB = np.array([214, 214, 214], np.uint8)
CACHE_FRAMES = 32  # decoded frames kept (about 0.4 MB each at 360 px)


def find_video(data_root: str | Path, stem: str) -> Path:
    """``<data_root>/Videos/<stem>.<ext>``; :class:`DataError` when missing."""
    folder = Path(data_root) / "Videos"
    hits = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in VIDEO_EXTS) if folder.is_dir() else []
    if not hits:
        raise DataError(f"{folder / stem}.{{mp4,avi,mov,mkv,webm}}: video not found. Fix: put the video in {folder}")
    return hits[0]


def annotation_classes(data_root: str | Path) -> dict[str, list[str]]:
    """``{task: sorted class names}`` found in ``<data_root>/Annotations/*.csv`` (label columns only)."""
    from kit.data.poses import _KP_COL

    found: dict[str, set] = {}
    for p in sorted((Path(data_root) / "Annotations").glob("*.csv")):
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        for c in df.columns:
            if c not in ("frame", "start_frame", "end_frame") and not _KP_COL.match(c) and not c.startswith("Unnamed"):
                found.setdefault(c, set()).update(v.strip() for v in df[c] if v.strip())
    order = ["action"] + sorted(t for t in found if t != "action")
    return {t: sorted(found[t]) for t in order if t in found}


def timeline_image(draft: LabelDraft, lo: int, hi: int, width: int = 800, row_h: int = 16,
                   cursor: int | None = None, mark: int | None = None,
                   colors: Mapping[str, Mapping[str, tuple]] | None = None) -> np.ndarray:
    """The draft's segments over frames ``lo..hi`` (inclusive), one row per task, as an RGB image.

    Shapes:
        returns: ``(R * row_h, W, 3)`` uint8.
    """
    if not 0 <= lo <= hi < draft.num_frames:
        raise ValueError(f"need 0 <= lo <= hi < {draft.num_frames}, got lo={lo}, hi={hi}")
    span = hi - lo + 1
    cols = lo + ((np.arange(width) + 0.5) * span / width).astype(np.int64)  # (W,) frame sampled by each column
    rows = []
    for task in draft.tasks:
        pal = colors[task] if colors else class_colors(draft.classes[task])
        labels, shade = draft.labels(task)[cols], draft.probs(task)[cols]  # (W,), (W,)
        rgb = np.tile(UNLABELED_RGB, (width, 1)).astype(np.float32)  # (W, 3)
        for name in set(labels) - {""}:
            on = labels == name
            rgb[on] = np.asarray(pal.get(name, (0.3, 0.3, 0.3))[:3], np.float32) * 255
        a = np.where(labels == "", 1.0, 0.25 + 0.75 * shade)[:, None]  # pale = unsure
        rgb = rgb * a + 255 * (1 - a)
        if span <= 4 * width:  # zoomed in: a dark line where a segment starts
            starts = {s.start for s in draft.segs(task)} | {s.end + 1 for s in draft.segs(task)}
            edge = np.isin(cols, list(starts)) & (np.diff(cols, prepend=-1) > 0)
            rgb[edge] = 60
        row = np.repeat(rgb[None].astype(np.uint8), row_h, 0)  # (row_h, W, 3)
        row[-1] = 255  # a white line between tasks
        rows.append(row)
    img = np.concatenate(rows, 0)  # (R * row_h, W, 3)
    for frame, color in ((mark, (220, 30, 30)), (cursor, (0, 0, 0))):
        if frame is not None and lo <= frame <= hi:
            x = int((frame - lo + 0.5) * width / span)
            img[:, max(0, x - 1):x + 1] = color
    return img


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))  # (H, W, 3) RGB -> BGR for OpenCV
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return buf.tobytes()


class Annotator:
    """Labels one video: a :class:`LabelDraft` plus a cursor, a mark, the task being edited and the video.

    Args:
        video_path: the video.
        draft: its labels (``draft.num_frames`` must equal the video's frame count).
        img_size: the longest side of the frame shown, in pixels.
        suggestions: rows of ``kit.results.suggest.suggest`` (``video, start_frame, end_frame, reason``);
            those of this video are the targets of :meth:`jump`.
        zoom_frames: frames shown by the zoomed timeline around the cursor.
    """

    def __init__(self, video_path: str | Path, draft: LabelDraft, img_size: int = 360,
                 suggestions: pd.DataFrame | None = None, zoom_frames: int = 300):
        self.video_path = Path(video_path)
        meta = probe_video(self.video_path)
        if meta.num_frames != draft.num_frames:
            raise DataError(f"{self.video_path} has {meta.num_frames} frames but the labels {draft.num_frames}. Fix: "
                            "open the labels made for this video")
        self.meta, self.draft, self.img_size, self.zoom_frames = meta, draft, img_size, zoom_frames
        self.frame, self.marked, self.task = 0, None, draft.tasks[0]
        self.message = ""
        stem = self.video_path.stem
        self.suggestions = (suggestions[suggestions["video"] == stem].reset_index(drop=True)
                            if suggestions is not None and len(suggestions) else pd.DataFrame())
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._colors = {t: class_colors(cs) for t, cs in draft.classes.items()}
        self._view = None

    @classmethod
    def open(cls, data_root: str | Path, stem: str, prediction: str | Path | None = None,
             classes: Mapping[str, Sequence[str]] | None = None, **kw) -> "Annotator":
        """The widget for ``<data_root>/Videos/<stem>.*``.

        Args:
            data_root: the dataset (``Videos/``, ``Annotations/``); saving writes ``Annotations/<stem>.csv``.
            stem: the video.
            prediction: ``predict``'s ``<stem>.csv``, or the folder holding it: start from the model's
                labels instead of the annotation (saving over an existing annotation then needs
                ``save(overwrite=True)``; the old file is backed up).
            classes: ``{task: [classes]}`` offered as buttons; default: those in the other annotations
                (and the prediction's).
            kw: passed to :class:`Annotator`.
        """
        video = find_video(data_root, stem)
        target = Path(data_root) / "Annotations" / f"{stem}.csv"
        classes = dict(classes) if classes else annotation_classes(data_root)
        if prediction is not None:
            table = Path(prediction) / f"{stem}.csv" if Path(prediction).is_dir() else Path(prediction)
            draft = LabelDraft.from_prediction(table, classes, path=target)
        elif target.is_file():
            draft = LabelDraft.from_annotation(data_root, stem, classes)
        else:
            if not classes:
                raise DataError(f"{target}: no annotation yet and no classes known. Fix: pass classes="
                                "{'action': ['walk', ...]}")
            meta = probe_video(video)
            draft = LabelDraft(meta.num_frames, classes, meta.fps or 25.0, target)
        return cls(video, draft, **kw)

    # --- the Python API (every button calls one of these) ------------------------------------------
    def goto(self, frame: int) -> int:
        """Moves the cursor to ``frame`` (clipped to the video); returns it."""
        self.frame = int(np.clip(frame, 0, self.draft.num_frames - 1))
        return self._done("")

    def step(self, n: int) -> int:
        """Moves the cursor ``n`` frames (negative: back)."""
        return self.goto(self.frame + n)

    def next_boundary(self, direction: int = 1) -> int:
        """Moves the cursor to the next (``direction`` > 0) or previous start of a segment of the task."""
        edges = sorted({s.start for s in self.draft.segs(self.task)} | {s.end + 1 for s in self.draft.segs(self.task)})
        ahead = [e for e in edges
                 if (e > self.frame if direction > 0 else e < self.frame) and e < self.draft.num_frames]
        return self.goto((ahead[0] if direction > 0 else ahead[-1]) if ahead else self.frame)

    def choose_task(self, task: str) -> None:
        """The task the class and edit buttons work on."""
        if task not in self.draft.tasks:
            raise KeyError(f"no task {task!r} (tasks: {self.draft.tasks})")
        self.task = task
        self._done(f"editing {task}")

    def mark(self, frame: int | None = None) -> None:
        """Remembers where a segment starts (default: the cursor); the next class button draws mark..cursor."""
        self.marked = self.frame if frame is None else int(frame)
        self._done(f"mark at {self.marked}")

    def label(self, name: str) -> None:
        """With a mark: frames mark..cursor become ``name``. Without: the segment under the cursor is relabelled."""
        if self.marked is not None:
            self.draft.draw(self.task, self.marked, self.frame, name)
            self.marked = None
        else:
            i = self._here()
            self.draft.relabel(self.task, i, name)
        self._done(f"{self.task}: {name}")

    def split(self) -> None:
        """Splits the segment under the cursor: the cursor's frame starts the second half."""
        self.draft.split(self.task, self.frame)
        self._done("split")

    def merge(self) -> None:
        """Joins the segment under the cursor with the next one (the first's class)."""
        self.draft.merge(self.task, self._here())
        self._done("merged")

    def delete(self) -> None:
        """Removes the segment under the cursor (its frames become unlabeled)."""
        self.draft.delete(self.task, self._here())
        self._done("deleted")

    def set_start(self) -> None:
        """The segment just after the cursor (or under it) now starts at the cursor."""
        i = self.draft.index_at(self.task, self.frame)
        if i is None:
            later = [j for j, s in enumerate(self.draft.segs(self.task)) if s.start > self.frame]
            if not later:
                raise ValueError("no segment at or after the cursor")
            i = later[0]
        self.draft.set_bounds(self.task, i, start=self.frame)
        self._done("start moved")

    def set_end(self) -> None:
        """The segment just before the cursor (or under it) now ends at the cursor."""
        i = self.draft.index_at(self.task, self.frame)
        if i is None:
            earlier = [j for j, s in enumerate(self.draft.segs(self.task)) if s.end < self.frame]
            if not earlier:
                raise ValueError("no segment at or before the cursor")
            i = earlier[-1]
        self.draft.set_bounds(self.task, i, end=self.frame)
        self._done("end moved")

    def move(self, delta: int) -> None:
        """Shifts the segment under the cursor by ``delta`` frames; the cursor follows it."""
        s = self.draft.segs(self.task)[self._here()]
        j = self.draft.move(self.task, self._here(), delta)
        self.frame += self.draft.segs(self.task)[j].start - s.start
        self._done("moved")

    def undo(self) -> None:
        self._done("undone" if self.draft.undo() else "nothing to undo")

    def redo(self) -> None:
        self._done("redone" if self.draft.redo() else "nothing to redo")

    def save(self, overwrite: bool = False) -> Path:
        """Writes ``Annotations/<stem>.csv`` (:meth:`LabelDraft.save`)."""
        path = self.draft.save(overwrite=overwrite)
        self._done(f"saved {path}")
        return path

    KEYS = {"m": ("mark",), "s": ("split",), "j": ("merge",), "x": ("delete",), "[": ("set_start",),
            "]": ("set_end",), "u": ("undo",), "r": ("redo",), ".": ("step", 1), ",": ("step", -1),
            ">": ("step", 25), "<": ("step", -25), "n": ("next_boundary", 1), "p": ("next_boundary", -1)}

    def key(self, ch: str) -> None:
        """A keyboard shortcut: ``1``-``9`` the task's classes (as their buttons), ``m`` mark, ``s`` split,
        ``j`` merge next, ``x`` delete, ``[`` / ``]`` start / end here, ``u`` / ``r`` undo / redo,
        ``,`` / ``.`` one frame back / on, ``<`` / ``>`` 25 frames, ``p`` / ``n`` previous / next boundary."""
        if ch.isdigit() and 1 <= int(ch) <= len(self.draft.classes[self.task]):
            return self.label(self.draft.classes[self.task][int(ch) - 1])
        if ch not in self.KEYS:
            raise KeyError(f"no shortcut {ch!r} (keys: 1-9, {' '.join(self.KEYS)})")
        name, *args = self.KEYS[ch]
        getattr(self, name)(*args)

    def jump(self, i: int) -> int:
        """Goes to the start of suggestion ``i`` of this video and marks its stretch."""
        if not 0 <= i < len(self.suggestions):
            raise IndexError(f"{self.video_path.stem} has {len(self.suggestions)} suggestion(s), no {i}")
        row = self.suggestions.iloc[i]
        self.goto(int(row["start_frame"]))
        self.message = f"suggestion {i}: frames {row['start_frame']}-{row['end_frame']}: {row['reason']}"
        return self._done(self.message)

    # --- what is shown ------------------------------------------------------------------------------
    def image(self, frame: int | None = None) -> np.ndarray:
        """The frame (default: the cursor's), longest side ``img_size``, decoded on demand and cached.

        Shapes:
            returns: ``(h, w, 3)`` uint8 RGB at the video's aspect ratio.
        """
        f = self.frame if frame is None else int(frame)
        if f not in self._frames:
            fit = Resize(self.img_size, mode="pad", interpolation="area")  # longest side to S, aspect kept
            sq = read_frames(self.video_path, [f], fit)[0]  # (3, S, S) padded square
            h, w = self.meta.height, self.meta.width
            sh, sw = (self.img_size, max(1, round(self.img_size * w / h))) if h >= w else (
                max(1, round(self.img_size * h / w)), self.img_size)
            top, left = (self.img_size - sh) // 2, (self.img_size - sw) // 2
            self._frames[f] = sq.permute(1, 2, 0).numpy()[top:top + sh, left:left + sw].copy()  # (h, w, 3)
            while len(self._frames) > CACHE_FRAMES:
                self._frames.popitem(last=False)
        self._frames.move_to_end(f)
        return self._frames[f]

    def timelines(self, width: int = 800) -> tuple[np.ndarray, np.ndarray]:
        """The overview (whole video) and the zoom (``zoom_frames`` around the cursor) timeline images."""
        L = self.draft.num_frames
        half = self.zoom_frames // 2
        lo = int(np.clip(self.frame - half, 0, max(0, L - self.zoom_frames)))
        hi = min(L - 1, lo + self.zoom_frames - 1)
        kw = dict(cursor=self.frame, mark=self.marked, colors=self._colors, width=width)
        return timeline_image(self.draft, 0, L - 1, **kw), timeline_image(self.draft, lo, hi, **kw)

    def png(self, width: int = 640) -> bytes:
        """The frame over the two timelines as one PNG: what the widget shows, for a headless run or a report."""
        img = self.image()
        h = max(1, round(img.shape[0] * width / img.shape[1]))
        img = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA if width < img.shape[1] else cv2.INTER_LINEAR)
        over, zoom = self.timelines(width)
        gap = np.full((6, width, 3), 255, np.uint8)
        return _png(np.concatenate([img, gap, over, gap, zoom], 0))  # (h + 2 * (6 + R * 16), width, 3)

    def status(self) -> str:
        """One line: the frame, its time and each task's label here."""
        here = ", ".join(f"{t}: {self.draft.labels(t)[self.frame] or '-'}" for t in self.draft.tasks)
        fps = self.meta.fps or self.draft.fps
        return f"frame {self.frame} / {self.draft.num_frames - 1} ({self.frame / fps:.2f} s). {here}"

    def widget(self):
        """The ipywidgets view (display it in a live kernel); its buttons call the methods above."""
        from kit.results.annotator_view import build_view

        self._view = build_view(self)
        return self._view.box

    # --- internals --------------------------------------------------------------------------------
    def _here(self) -> int:
        i = self.draft.index_at(self.task, self.frame)
        if i is None:
            raise ValueError(f"no {self.task} segment at frame {self.frame}: press mark, move, then a class")
        return i

    def _done(self, message: str) -> int:
        self.message = message or self.message
        self._colors = {t: class_colors(cs) for t, cs in self.draft.classes.items()}
        if self._view is not None:
            self._view.refresh()
        return self.frame
