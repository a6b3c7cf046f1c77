"""Matplotlib figures for the notebooks: every function returns a ``matplotlib.figure.Figure``.

Figures are created through pyplot and closed at once: nothing accumulates in pyplot's state,
a notebook shows the returned figure exactly once, and headless runs (papermill, CI) work with
any backend. ``save=PATH`` writes a PNG there; ``run_dir=RUN`` writes ``RUN/figures/<name>.png``
(functions that read a run save into its ``figures/`` by default).

Colours are per class and stable: :func:`class_colors` assigns them in the order of the run's
``labels.json`` (sorted class names), so a class has the same colour in every plot; unlabeled
frames are grey.

The run's figures are here; :mod:`kit.results.input_view` (what a model sees) and
:mod:`kit.results.barcode` (one video's predictions) draw with this module's helpers.

Legend: ``L`` frames in a video, ``K`` classes of a task.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from kit.files import read_history, read_json

UNLABELED = "#cfcfcf"  # frames without a label (and predictions of no known class)


# --- shared helpers ---------------------------------------------------------------------------
def class_colors(class_names: Sequence[str]) -> dict[str, tuple]:
    """``{class: RGBA}``: tab10 up to 10 classes, tab20 up to 20, then evenly spaced turbo."""
    n = len(class_names)
    if n <= 10:
        cmap, pos = matplotlib.colormaps["tab10"], range(n)
    elif n <= 20:
        cmap, pos = matplotlib.colormaps["tab20"], range(n)
    else:
        cmap, pos = matplotlib.colormaps["turbo"], np.linspace(0.05, 0.95, n)
    return {name: cmap(p) for name, p in zip(class_names, pos)}


def _figure(nrows: int = 1, ncols: int = 1, figsize=None, **kw) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kw)
    plt.close(fig)  # detach from pyplot: shown once in notebooks, never leaks in loops
    return fig, axes


def _finish(fig: Figure, name: str, save=None, run_dir=None) -> Figure:
    """Saves the PNG where asked (``save`` path, or ``<run_dir>/figures/<name>.png``)."""
    targets = [Path(save)] if save else []
    if run_dir:
        targets.append(Path(run_dir) / "figures" / f"{name}.png")
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().float().numpy() if x.dtype.is_floating_point else x.detach().cpu().numpy()
    return np.asarray(x)


def _names(seq, class_names: Sequence[str]) -> list[str]:
    """Per-frame class names from names or class indices (negative / out of range -> "")."""
    out = []
    for v in (seq.tolist() if hasattr(seq, "tolist") else seq):
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out.append(class_names[v] if 0 <= v < len(class_names) else "")
        elif v is None or (isinstance(v, float) and math.isnan(v)):
            out.append("")  # pandas reads empty CSV cells as NaN
        else:
            out.append(str(v))
    return out


def _segments(names: Sequence[str]) -> list[tuple[str, int, int]]:
    """Runs of equal labels as ``(label, start, length)``."""
    segs, start = [], 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            segs.append((names[start], start, i - start))
            start = i
    return segs


def _ribbon(ax, y: float, names: Sequence[str], colors: Mapping[str, tuple], height: float = 0.8) -> None:
    segs = _segments(names)
    if segs:
        ax.broken_barh([(s, n) for _, s, n in segs], (y - height / 2, height),
                       facecolors=[colors.get(lab, UNLABELED) for lab, _, _ in segs])


def _legend(fig: Figure, class_names: Sequence[str], colors: Mapping[str, tuple], unlabeled: bool) -> None:
    handles = [Patch(color=colors[c], label=c) for c in class_names]
    if unlabeled:
        handles.append(Patch(color=UNLABELED, label="(unlabeled)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), frameon=False,
               fontsize="small")


# --- training -----------------------------------------------------------------------------
def training_curves(history: pd.DataFrame | str | Path, metrics: Sequence[str] = ("acc", "edit", "f1@50"),
                    save=None, run_dir=None) -> Figure:
    """Losses (left) and validation metrics per epoch: one panel per task, one colour per metric.

    Args:
        history: the run's ``history.csv`` as a DataFrame, or the run folder (then the PNG goes to
            ``<run>/figures/training_curves.png``).
        metrics: which ``val_<task>_<metric>`` columns to draw, in every task's panel.
    """
    if not isinstance(history, pd.DataFrame):
        run_dir = run_dir or history
        history = read_history(history)
    val_cols = [c for c in history.columns if c.startswith("val_") and c != "val_s"]
    tasks = list(dict.fromkeys(c[4:].rsplit("_", 1)[0] for c in val_cols))
    fig, axes = _figure(1, 1 + len(tasks), figsize=(4.2 * (1 + len(tasks)), 3.6), layout="constrained")
    loss_ax, task_axes = axes[0][0], axes[0][1:]
    x = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)  # numbered from 1
    marker = "o" if len(history) <= 20 else None  # dots on a long run hide the line
    for col in [c for c in history.columns if c.endswith("loss")]:
        loss_ax.plot(x, history[col], marker=marker, ms=3, label=col)
    loss_ax.set(title="loss", xlabel="epoch", ylabel="loss")
    for ax, task in zip(task_axes, tasks):
        for mi, m in enumerate(metrics):
            col = f"val_{task}_{m}"
            if col in history:
                ax.plot(x, history[col], marker=marker, ms=3, color=f"C{mi}", label=m)
        ax.set(title=f"validation: {task}", xlabel="epoch", ylabel="%", ylim=(0, 100))
    for ax in [loss_ax, *task_axes]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="lower right" if ax is not loss_ax else "upper right")
        ax.grid(alpha=0.3)
    return _finish(fig, "training_curves", save, run_dir)


# --- evaluation ---------------------------------------------------------------------------
def confusion_matrix(cm, labels: Sequence[str], normalize: bool = True, title: str = "confusion",
                     save=None, run_dir=None) -> Figure:
    """Confusion matrix (rows = ground truth, columns = prediction), each cell annotated.

    ``normalize`` divides each row by its total (rows with no frames stay 0), so the diagonal is
    the recall of each class.
    """
    cm = np.asarray(cm, dtype=np.float64)
    K = len(labels)
    if cm.shape != (K, K):
        raise ValueError(f"confusion matrix must be ({K}, {K}) for {K} labels, got {cm.shape}")
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1e-12)
    side = max(3.5, 0.6 * K + 2)
    fig, axes = _figure(figsize=(side + 1, side), layout="constrained")
    ax = axes[0, 0]
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of row" if normalize else "frames")
    ax.set_xticks(range(K), labels, rotation=45, ha="right")
    ax.set_yticks(range(K), labels)
    ax.set(xlabel="predicted", ylabel="ground truth", title=title)
    top = cm.max() if cm.size else 0
    for i in range(K):
        for j in range(K):
            text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if top and cm[i, j] > 0.6 * top else "black")
    return _finish(fig, f"confusion_{title}".replace(" ", "_"), save, run_dir)


def run_confusion(run_dir: str | Path, split: str = "val", task: str = "action",
                  normalize: bool = True, save=None) -> Figure:
    """:func:`confusion_matrix` of ``eval_<split>.json`` (written by ``kit.results.evaluate``)."""
    path = Path(run_dir) / f"eval_{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run kit.results.evaluate.evaluate({str(run_dir)!r}, "
                                f"split={split!r}) first")
    res = read_json(path)[task]
    fig = confusion_matrix(res["confusion"], res["labels"], normalize, title=f"{task} ({split})", save=save)
    return _finish(fig, f"confusion_{split}_{task}", None, run_dir)


def timelines(gt: Sequence, pred: Sequence | None, class_names: Sequence[str], title: str = "",
              save=None, run_dir=None) -> Figure:
    """One video's ground truth (and prediction) as coloured ribbons over the frames.

    ``gt`` and ``pred`` are per-frame class names or class indices into ``class_names``;
    "" / NaN / negative indices are unlabeled (grey).
    """
    fig, axes = _figure(figsize=(10, 1.6 if pred is None else 2.0), layout="constrained")
    _draw_timeline(axes[0, 0], gt, pred, class_names, class_colors(class_names), title)
    _legend(fig, class_names, class_colors(class_names), unlabeled="" in _names(gt, class_names))
    return _finish(fig, f"timeline_{title or 'video'}".replace(" ", "_"), save, run_dir)


def _draw_timeline(ax, gt, pred, class_names, colors, title: str) -> bool:
    rows = [("ground truth", _names(gt, class_names))]
    if pred is not None:
        rows.append(("prediction", _names(pred, class_names)))
    for y, (_, names) in enumerate(rows):
        _ribbon(ax, -y, names, colors)
    ax.set_yticks([-y for y in range(len(rows))], [r[0] for r in rows])
    ax.set_xlim(0, max(len(rows[0][1]), 1))
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.set_title(title, loc="left", fontsize="medium")
    ax.spines[["top", "right", "left"]].set_visible(False)
    return any("" in names for _, names in rows)


def run_timelines(run_dir: str | Path, split: str = "val", task: str = "action", max_videos: int = 6,
                  save=None) -> Figure:
    """Ground truth vs prediction ribbons of the first ``max_videos`` videos of a split.

    Reads ``<run>/predictions/<video>.csv`` (written by ``kit.results.evaluate``) and ``labels.json``;
    saves ``<run>/figures/timelines_<split>_<task>.png``.
    """
    run = Path(run_dir)
    names = read_json(run / "labels.json")[task]
    stems = read_json(run / "splits.json").get(split, [])
    files = [run / "predictions" / f"{s}.csv" for s in stems]
    files = [f for f in files if f.is_file()][:max_videos]
    if not files:
        raise FileNotFoundError(f"no predictions of split {split!r} in {run / 'predictions'}: run "
                                f"kit.results.evaluate.evaluate({str(run)!r}, split={split!r}) first")
    colors = class_colors(names)
    fig, axes = _figure(len(files), 1, figsize=(10, 1.25 * len(files) + 0.9), layout="constrained",
                        sharex=False)
    unlabeled = False
    for ax, f in zip(axes[:, 0], files):
        df = pd.read_csv(f, keep_default_na=False)
        gt, pred = df[f"{task}_true"].astype(str), df[f"{task}_pred"].astype(str)
        known = gt != ""
        acc = 100.0 * (gt[known] == pred[known]).mean() if known.any() else float("nan")
        unlabeled |= _draw_timeline(ax, gt.tolist(), pred.tolist(), names, colors,
                                    f"{f.stem}  ({len(df)} frames, acc {acc:.1f}%)")
    axes[-1, 0].set_xlabel("frame")
    fig.suptitle(f"{task}: ground truth vs prediction ({split})")
    _legend(fig, names, colors, unlabeled)
    return _finish(fig, f"timelines_{split}_{task}", save, run)


def label_timelines(records, task: str = "action", class_names: Sequence[str] | None = None,
                    save=None, run_dir=None) -> Figure:
    """Ground-truth ribbons of ``task``, one row per video (``kit.data.VideoRecord`` list)."""
    records = list(records)
    if not records:
        raise ValueError("label_timelines got no records")
    seqs = [(r.stem, list(r.labels.get(task, []))) for r in records]
    if class_names is None:
        class_names = sorted({lab for _, s in seqs for lab in s if lab})
    colors = class_colors(class_names)
    fig, axes = _figure(figsize=(10, 0.4 * len(seqs) + 1.2), layout="constrained")
    ax = axes[0, 0]
    for y, (_, s) in enumerate(seqs):
        _ribbon(ax, -y, s, colors)
    ax.set_yticks([-y for y in range(len(seqs))], [stem for stem, _ in seqs], fontsize="small")
    ax.set_xlim(0, max(len(s) for _, s in seqs))
    ax.set(xlabel="frame", title=f"{task} labels per video")
    ax.spines[["top", "right", "left"]].set_visible(False)
    _legend(fig, class_names, colors, unlabeled=any("" in s for _, s in seqs))
    return _finish(fig, f"labels_{task}", save, run_dir)


def label_counts(records, save=None, run_dir=None) -> Figure:
    """Frames per class, one bar chart per task (bars split by split when given several).

    Args:
        records: a list of ``VideoRecord``; a dict ``{split: [VideoRecord]}`` (bars per split);
            or a per-frame DataFrame with one column per task (and optionally ``split``).
    """
    df = _label_frame(records)
    tasks = [c for c in df.columns if c != "split"]
    fig, axes = _figure(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), layout="constrained")
    for ax, task in zip(axes[0], tasks):
        lab = df[df[task].astype(str) != ""]
        counts = (lab.groupby([task, "split"]).size().unstack("split", fill_value=0) if "split" in lab
                  else lab[task].value_counts().sort_index().to_frame("frames"))
        if "split" in lab:  # train, val, test in that order, then anything else
            order = {"train": 0, "val": 1, "test": 2}
            counts = counts[sorted(counts.columns, key=lambda c: (order.get(c, 3), str(c)))]
        counts.plot.bar(ax=ax, legend=False, rot=30)
        ax.set(title=task, xlabel="", ylabel="frames")
        if "split" in lab and counts.shape[1] > 1:  # beside the axes: inside, it covers the tallest bar
            ax.legend(title="split", fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _finish(fig, "label_counts", save, run_dir)


def _label_frame(records) -> pd.DataFrame:
    if isinstance(records, pd.DataFrame):
        return records.fillna("")
    groups = records.items() if isinstance(records, Mapping) else [(None, records)]
    parts = []
    for split, recs in groups:
        for r in recs:
            part = pd.DataFrame({t: list(v) for t, v in r.labels.items()})
            if split is not None:
                part["split"] = split
            parts.append(part)
    if not parts:
        raise ValueError("label_counts got no records")
    return pd.concat(parts, ignore_index=True).fillna("")
