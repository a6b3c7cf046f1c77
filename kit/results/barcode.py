"""The barcode: one video's predictions as a coloured ribbon per task, over the top-class probability.

:func:`top_labels` checks the probabilities and takes each frame's most probable class;
:func:`label_runs` turns a sequence of classes into runs (O(L) numpy), which
:mod:`kit.results.prediction_view` draws too. Colours are :func:`kit.results.plots.class_colors` of a
task's whole vocabulary, so a class has the same colour here as in every other figure.

Legend: ``L`` frames in a video, ``K_task`` classes of a task.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kit.results.plots import _figure, _finish, _to_numpy, class_colors


def top_labels(probs: Mapping[str, np.ndarray], vocab: Mapping[str, Sequence[str]]) -> dict[str, tuple]:
    """Per task the most probable class of each frame and its probability, after checking the input.

    Shapes:
        probs: ``{task: (L, K_task)}`` class probabilities (rows sum to 1), the same ``L`` for all tasks.
        returns: ``{task: (index (L,) int64, probability (L,) float32)}`` in the order of ``vocab``.
    """
    if set(probs) != set(vocab):
        raise ValueError(f"probs has tasks {sorted(probs)} but vocab has {sorted(vocab)}: pass the run's "
                         "labels.json with the probabilities of every one of its heads")
    out, length = {}, None
    for task, names in vocab.items():
        p = _to_numpy(probs[task])
        if p.ndim != 2 or p.shape[1] != len(names):
            raise ValueError(f"probs[{task!r}] must be (L, {len(names)}) for the {len(names)} classes of "
                             f"vocab[{task!r}], got shape {tuple(p.shape)}")
        if length is not None and p.shape[0] != length:
            raise ValueError(f"probs[{task!r}] has {p.shape[0]} frames, the other tasks {length}")
        length = p.shape[0]
        if length == 0:
            raise ValueError(f"probs[{task!r}] has no frames")
        if not np.isfinite(p).all():
            raise ValueError(f"probs[{task!r}] holds NaN or inf values")
        sums = p.sum(1, dtype=np.float64)
        if np.abs(sums - 1).max() > 1e-3:
            raise ValueError(f"probs[{task!r}] rows must sum to 1 (softmax probabilities), got sums in "
                             f"[{sums.min():.3f}, {sums.max():.3f}]: pass softmax(logits), not the logits")
        idx = p.argmax(1)
        out[task] = (idx.astype(np.int64), p[np.arange(length), idx].astype(np.float32))
    return out


def label_runs(idx) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of equal values as ``(starts, ends)`` (``ends`` inclusive), in O(L) numpy.

    Example: ``label_runs([2, 2, 0, 0, 0, 2])`` -> ``([0, 2, 5], [1, 4, 5])``.
    """
    idx = np.asarray(idx).reshape(-1)  # (L,)
    if idx.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(idx[1:] != idx[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [idx.size]]).astype(np.int64) - 1
    return starts, ends


def _time_axis(ax, duration_s: float) -> None:
    """Ticks in seconds, or ``m:ss`` on whole minutes (at most ~10 ticks) past 10 minutes."""
    if duration_s < 600:
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_xlabel("time (s)")
        return
    step = next((m for m in (1, 2, 5, 10, 15, 30) if duration_s / (60 * m) <= 10), 60)
    ax.xaxis.set_major_locator(matplotlib.ticker.MultipleLocator(60 * step))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{int(x // 60)}:{int(x % 60):02d}"))
    ax.set_xlabel("time (m:ss)")


def _confidence_curve(ax, top: np.ndarray, fps: float, color, label: str, bins: int = 1000) -> None:
    """Top-class probability over time; long videos are drawn per bin (mean line, min-max band)."""
    L = len(top)
    if L <= 2 * bins:
        ax.plot((np.arange(L) + 0.5) / fps, top, color=color, lw=1, label=label)
        return
    edges = np.linspace(0, L, bins + 1).astype(np.int64)
    mean = np.add.reduceat(top, edges[:-1]) / np.diff(edges)
    t = (edges[:-1] + edges[1:]) / 2 / fps
    ax.fill_between(t, np.minimum.reduceat(top, edges[:-1]), np.maximum.reduceat(top, edges[:-1]),
                    color=color, alpha=0.25, lw=0)
    ax.plot(t, mean, color=color, lw=1, label=f"{label} (mean per {L / bins / fps:.2g} s; band: min-max)")


def barcode(probs: Mapping[str, np.ndarray], vocab: Mapping[str, Sequence[str]], fps: float, title: str = "",
            save=None, run_dir=None) -> Figure:
    """One video's predictions: a coloured ribbon per task and the top-class probability over time.

    Each task gets a ribbon (runs of its most probable class, drawn as bars: fast on 100k frames)
    with its own legend (the classes predicted in the video, coloured by :func:`class_colors` of
    the task's whole vocabulary, so colours match every other figure); segments wide enough carry
    their class name. The bottom panel draws the probability of the top class per frame and task:
    dips are where the model is unsure. The x axis is time in seconds, frames on top.

    Args:
        probs: ``{task: (L, K_task)}`` probabilities (rows sum to 1).
        vocab: ``{task: [class names]}`` in head order (the run's ``labels.json``).
        fps: frames per second of the video.
    """
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    tops = top_labels(probs, vocab)
    L = len(next(iter(tops.values()))[0])
    dur = L / fps
    n = len(tops)
    fig, axes = _figure(n + 1, 1, figsize=(12, 0.75 * n + 2.3), layout="constrained", sharex=True,
                        gridspec_kw=dict(height_ratios=[1] * n + [2.2]))
    axes = axes[:, 0]
    for ax, (task, (idx, _)) in zip(axes, tops.items()):
        names = list(vocab[task])
        colors = class_colors(names)
        starts, ends = label_runs(idx)
        facecolors = [colors[names[i]] for i in idx[starts]]
        ax.broken_barh(list(zip(starts / fps, (ends - starts + 1) / fps)), (0, 1), facecolors=facecolors,
                       linewidth=0, antialiased=False)  # no seams between adjacent runs
        ax.set_label(f"ribbon {task}")
        wide = [(s, e) for s, e in zip(starts, ends) if (e - s + 1) > 0.06 * L][:40]
        for s, e in wide:
            rgb = matplotlib.colors.to_rgb(colors[names[idx[s]]])
            ax.text((s + e + 1) / 2 / fps, 0.5, names[idx[s]], ha="center", va="center", fontsize="x-small",
                    clip_on=True, color="black" if np.dot(rgb, (0.299, 0.587, 0.114)) > 0.5 else "white")
        ax.set_ylim(0, 1)
        ax.set_yticks([0.5], [task])
        ax.tick_params(axis="y", length=0)
        ax.spines[["top", "right", "left", "bottom"]].set_visible(False)
        present = [names[i] for i in sorted(set(idx[starts].tolist()))]
        ax.legend(handles=[Patch(color=colors[c], label=c) for c in present], loc="center left",
                  bbox_to_anchor=(1.005, 0.5), fontsize="x-small", frameon=False,
                  ncol=max(1, math.ceil(len(present) / 4)),
                  title=f"{task}: {len(present)} of {len(names)} classes", title_fontsize="x-small")
    conf = axes[-1]
    for ti, (task, (_, top)) in enumerate(tops.items()):
        _confidence_curve(conf, top, fps, f"C{ti}" if n > 1 else "0.25", task)
    conf.axhline(0.5, color="0.6", lw=0.8, ls=":")
    conf.set(ylim=(0, 1.02), xlim=(0, dur), ylabel="top-class\nprobability")
    conf.legend(loc="center left", bbox_to_anchor=(1.005, 0.5), fontsize="x-small", frameon=False)
    conf.grid(alpha=0.3)
    _time_axis(conf, dur)
    top_ax = axes[0].secondary_xaxis("top", functions=(lambda t: t * fps, lambda f: f / fps))
    top_ax.set_xlabel("frame", fontsize="small")
    top_ax.tick_params(labelsize="small")
    fig.suptitle(f"{title + ': ' if title else ''}{L} frames, {dur:.1f} s at {fps:g} fps", fontsize="medium")
    return _finish(fig, f"barcode_{title or 'video'}".replace(" ", "_"), save, run_dir)
