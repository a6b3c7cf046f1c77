"""What labelling a new video writes: per-frame and per-segment tables, MS-TCN's result file, the
barcode figure and the overlay video.

Everything starts from one video's class probabilities, so nothing here depends on the model::

    probs = {task: (L, K_task) float, rows sum to 1}     vocab = {task: [class names]} (head order)

Per video ``<stem>`` in ``out_dir`` (:func:`write_video_outputs`; each file written atomically,
so a file with its final name is complete):

    <stem>.csv               frame, time_s, then per task <task> (top class), <task>_prob
    <stem>.segments.csv      task, segment, start_frame, end_frame (inclusive), start_s, end_s,
                             duration_s, frames, label, mean_prob
    <stem>.txt               MS-TCN's result file of the action task (spaces in names -> "_")
    <stem>.png               the barcode (kit.results.barcode.barcode)
    <stem>.overlay.mp4       with overlay=True (.webm when only a VP9/VP8 encoder works)

Legend: ``L`` frames of the video, ``K`` classes of a task.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kit.data.mstcn import mstcn_labels, write_result  # noqa: F401  (mstcn_labels re-exported)
from kit.data.video import probe_video
from kit.files import atomic_path
from kit.log import log
from kit.results.barcode import barcode, label_runs, top_labels
from kit.results.overlay import write_overlay

__all__ = ["frame_table", "segments_table", "summary_table", "read_frame_table", "mstcn_labels", "output_paths",
           "outputs_done", "write_video_outputs"]

FLOAT_FORMAT = "%.4f"  # CSV precision: 0.1 ms, and probabilities to 4 decimals
RESERVED = ("frame", "time_s")
OVERLAY_SUFFIXES = (".mp4", ".webm")


def _checked(probs, vocab, fps) -> dict:
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    clash = [t for t in vocab if t in RESERVED or any(f"{t}_prob" == u for u in vocab)]
    if clash:
        raise ValueError(f"task name(s) {clash} clash with the frame table's columns {list(RESERVED)} / <task>_prob")
    return top_labels(probs, vocab)


def frame_table(probs: Mapping[str, np.ndarray], vocab: Mapping[str, Sequence[str]], fps: float) -> pd.DataFrame:
    """One row per frame: ``frame``, ``time_s`` (its start), then per task ``<task>`` (the most
    probable class) and ``<task>_prob`` (its probability), tasks in ``vocab`` order."""
    tops = _checked(probs, vocab, fps)
    L = len(next(iter(tops.values()))[0])
    cols = {"frame": np.arange(L), "time_s": np.arange(L) / fps}
    for task, (idx, top) in tops.items():
        cols[task] = np.asarray(vocab[task], dtype=object)[idx]
        cols[f"{task}_prob"] = top
    return pd.DataFrame(cols)


def segments_table(probs: Mapping[str, np.ndarray], vocab: Mapping[str, Sequence[str]], fps: float) -> pd.DataFrame:
    """Per task, the maximal runs of its most probable class, in time order.

    Columns: ``task``, ``segment`` (0, 1, ... per task), ``start_frame``, ``end_frame`` (inclusive),
    ``start_s`` (start of the first frame), ``end_s`` (end of the last frame, = the next segment's
    ``start_s``), ``duration_s``, ``frames``, ``label``, ``mean_prob`` (mean probability of ``label``
    over the segment). Per task the segments tile the video: frames sum to ``L``.
    """
    tops = _checked(probs, vocab, fps)
    parts = []
    for task, (idx, top) in tops.items():
        starts, ends = label_runs(idx)
        frames = ends - starts + 1
        parts.append(pd.DataFrame({
            "task": task, "segment": np.arange(len(starts)), "start_frame": starts, "end_frame": ends,
            "start_s": starts / fps, "end_s": (ends + 1) / fps, "duration_s": frames / fps, "frames": frames,
            "label": np.asarray(vocab[task], dtype=object)[idx[starts]],
            "mean_prob": np.add.reduceat(top.astype(np.float64), starts) / frames}))
    return pd.concat(parts, ignore_index=True)


def summary_table(segments: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame],
                  vocab: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Per task and class over several videos: how much of the time each class was predicted.

    Args:
        segments: :func:`segments_table` of each video, as ``{video: table}`` or a list (a list's
            videos are told apart by their position).
        vocab: with it, classes never predicted get a row of zeros and rows follow its order;
            without, rows go by decreasing time per task.

    Returns:
        columns ``task``, ``label``, ``videos`` (in which it occurs), ``segments``, ``frames``,
        ``seconds``, ``share_pct`` (of the task's total time over all videos), ``mean_segment_s``.
    """
    items = segments.items() if isinstance(segments, Mapping) else enumerate(segments)
    parts = [df.assign(video=str(v)) for v, df in items]
    if not parts:
        raise ValueError("summary_table got no segment tables")
    seg = pd.concat(parts, ignore_index=True)
    g = seg.groupby(["task", "label"], sort=False)
    out = pd.DataFrame({"videos": g["video"].nunique(), "segments": g.size(), "frames": g["frames"].sum(),
                        "seconds": g["duration_s"].sum()}).reset_index()
    tasks = list(vocab) if vocab else list(dict.fromkeys(seg["task"]))
    if vocab:
        full = pd.DataFrame([(t, c) for t in tasks for c in vocab[t]], columns=["task", "label"])
        out = full.merge(out, on=["task", "label"], how="left").fillna(
            {"videos": 0, "segments": 0, "frames": 0, "seconds": 0.0})
        out[["videos", "segments", "frames"]] = out[["videos", "segments", "frames"]].astype(np.int64)
    else:
        out["order"] = out["task"].map({t: i for i, t in enumerate(tasks)})
        out = out.sort_values(["order", "seconds"], ascending=[True, False]).drop(columns="order")
    total = out.groupby("task")["seconds"].transform("sum")
    out["share_pct"] = 100 * out["seconds"] / total.where(total > 0, 1)
    out["mean_segment_s"] = out["seconds"] / out["segments"].where(out["segments"] > 0)
    return out.reset_index(drop=True)


def read_frame_table(path: str | Path) -> pd.DataFrame:
    """A ``<stem>.csv`` written by :func:`write_video_outputs`, class names kept as written
    (pandas would otherwise read classes named "NA" or "None" as missing)."""
    return pd.read_csv(path, keep_default_na=False, na_filter=False)


def output_paths(out_dir: str | Path, stem: str, overlay: bool = False) -> dict[str, Path]:
    """The files :func:`write_video_outputs` writes for ``stem`` (the overlay's suffix may become .webm)."""
    out = Path(out_dir)
    paths = {"frames": out / f"{stem}.csv", "segments": out / f"{stem}.segments.csv", "mstcn": out / f"{stem}.txt",
             "barcode": out / f"{stem}.png"}
    if overlay:
        paths["overlay"] = out / f"{stem}.overlay.mp4"
    return paths


def outputs_done(out_dir: str | Path, stem: str, overlay: bool = False) -> bool:
    """Whether every output of ``stem`` exists (each is written atomically, so existing = complete).

    It does not check which model wrote them: a caller that resumes decides whether a folder
    belongs to the run it labels with.
    """
    paths = output_paths(out_dir, stem, overlay)
    over = paths.pop("overlay", None)
    if over is not None and not any(over.with_suffix(s).is_file() for s in OVERLAY_SUFFIXES):
        return False
    return all(p.is_file() for p in paths.values())


def write_video_outputs(out_dir: str | Path, stem: str, probs: Mapping[str, np.ndarray],
                        vocab: Mapping[str, Sequence[str]], fps: float, video_path: str | Path | None = None,
                        overlay: bool = False, codecs: Sequence[str] | None = None, keypoints=None,
                        edges=(), columns: Mapping[str, np.ndarray] | None = None) -> dict[str, Path]:
    """Writes every output of one video (see the module docstring); the overlay comes last.

    Args:
        out_dir: the folder (created when missing).
        stem: the video's name without extension: the files' prefix.
        probs: ``{task: (L, K_task)}`` probabilities (rows sum to 1).
        vocab: ``{task: [class names]}`` in head order; the MS-TCN file is of ``action`` (else of
            the first task).
        fps: frames per second (times in the tables).
        video_path: the video; checked to have ``L`` frames; needed with ``overlay``.
        overlay: also write ``<stem>.overlay.mp4`` (:func:`kit.results.overlay.write_overlay`).
        codecs: the overlay's codec preference (default h264, vp9, vp8, mpeg4).
        keypoints, edges: the video's ``(L, J', 3)`` keypoints and skeleton edges, drawn on the overlay.
        columns: frame-table columns ``(L,)`` that replace (or follow) those of the probabilities,
            e.g. a behaviour's 0/1 decision and raw probability (:mod:`kit.results.behaviour_view`).

    Returns:
        ``{"frames", "segments", "mstcn", "barcode"[, "overlay"]: path written}``.
    """
    frames = frame_table(probs, vocab, fps)  # validates everything before a file is written
    labels = frames.copy()  # the MS-TCN file takes class names, before `columns` replace any
    for name, values in (columns or {}).items():
        frames[name] = values
    if overlay and video_path is None:
        raise ValueError(f"{stem}: overlay=True needs video_path")
    if video_path is not None and probe_video(video_path).num_frames != len(frames):
        raise ValueError(f"{video_path} has {probe_video(video_path).num_frames} frames but the probabilities "
                         f"cover {len(frames)}: pass the probabilities predicted for this video")
    task = "action" if "action" in vocab else next(iter(vocab))
    txt = mstcn_labels(labels[task])
    if txt != list(labels[task]):
        log.info(f"[info] {stem}.txt: spaces in {task} class names written as '_' (MS-TCN's format splits on spaces)")
    paths = output_paths(out_dir, stem, overlay)
    with atomic_path(paths["frames"]) as tmp:
        frames.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
    with atomic_path(paths["segments"]) as tmp:
        segments_table(probs, vocab, fps).to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
    with atomic_path(paths["mstcn"]) as tmp:
        write_result(tmp, txt)
    with atomic_path(paths["barcode"]) as tmp:
        barcode(probs, vocab, fps, title=stem).savefig(tmp, format="png", dpi=110)  # constrained layout fits it
    if overlay:
        info = write_overlay(video_path, paths["overlay"], probs, vocab, fps, codecs=codecs, keypoints=keypoints,
                             edges=edges)
        log.info(f"[info] {info.path.name}: {info.codec} via {info.encoder}, {info.width}x{info.height}, "
                 f"{info.frames} frames at {info.fps:g} fps")
        paths["overlay"] = info.path
    return paths
