"""Matplotlib figures for the notebooks: every function returns a ``matplotlib.figure.Figure``.

Figures are created through pyplot and closed at once: nothing accumulates in pyplot's state,
a notebook shows the returned figure exactly once, and headless runs (papermill, CI) work with
any backend. ``save=PATH`` writes a PNG there; ``run_dir=RUN`` writes ``RUN/figures/<name>.png``
(functions that read a run save into its ``figures/`` by default).

Colours are per class and stable: :func:`class_colors` assigns them in the order of the run's
``labels.json`` (sorted class names), so a class has the same colour in every plot; unlabeled
frames are grey.

Legend: ``S`` sampled frames, ``T`` frames in a window, ``T'`` token time steps, ``h, w`` patch
grid, ``D`` token width, ``J`` joints, ``L`` frames in a video.
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

from kit.temporal.model import COCO17_EDGES
from kit.files import read_history, read_json
from kit.data.windows import uniform_indices

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


def _as_hwc(frames) -> np.ndarray:
    """``(S, 3, H, W)`` or ``(S, H, W, 3)`` -> ``(S, H, W, 3)`` uint8."""
    f = _to_numpy(frames)
    if f.ndim != 4 or 3 not in (f.shape[1], f.shape[-1]):
        raise ValueError(f"frames must be (S, 3, H, W) or (S, H, W, 3), got shape {tuple(f.shape)}")
    if f.shape[-1] != 3:
        f = f.transpose(0, 2, 3, 1)  # (S, H, W, 3)
    if f.dtype != np.uint8:
        f = np.clip(f if f.max() > 1.0 else f * 255.0, 0, 255).astype(np.uint8)
    return f


def _grid(S: int, ncols: int, size: float = 1.6) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, S))
    nrows = math.ceil(S / ncols)
    fig, axes = _figure(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4), layout="constrained")
    axes = list(axes.ravel())
    for ax in axes[S:]:
        fig.delaxes(ax)
    for ax in axes[:S]:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes[:S]


# --- training -----------------------------------------------------------------------------
def training_curves(history: pd.DataFrame | str | Path, metrics: Sequence[str] = ("acc", "edit", "f1@50"),
                    save=None, run_dir=None) -> Figure:
    """Losses (left) and validation metrics (right) per epoch.

    Args:
        history: the run's ``history.csv`` as a DataFrame, or the run folder (then the PNG goes to
            ``<run>/figures/training_curves.png``).
        metrics: which ``val_<task>_<metric>`` columns to draw (colour = metric, line = task).
    """
    if not isinstance(history, pd.DataFrame):
        run_dir = run_dir or history
        history = read_history(history)
    fig, axes = _figure(1, 2, figsize=(11, 3.8), layout="constrained")
    loss_ax, val_ax = axes[0]
    x = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)  # numbered from 1
    for col in [c for c in history.columns if c.endswith("loss")]:
        loss_ax.plot(x, history[col], marker="o", label=col)
    loss_ax.set(title="loss", xlabel="epoch", ylabel="loss")
    styles = ["-", "--", ":", "-."]
    val_cols = [c for c in history.columns if c.startswith("val_")]
    tasks = list(dict.fromkeys(c[4:].rsplit("_", 1)[0] for c in val_cols))
    for ti, task in enumerate(tasks):
        for mi, m in enumerate(metrics):
            col = f"val_{task}_{m}"
            if col in history:
                val_ax.plot(x, history[col], marker="o", ls=styles[ti % len(styles)], color=f"C{mi}",
                            label=f"{task} {m}")
    val_ax.set(title="validation", xlabel="epoch", ylabel="%", ylim=(0, 100))
    for ax in (loss_ax, val_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
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
        counts.plot.bar(ax=ax, legend="split" in lab and counts.shape[1] > 1, rot=30)
        ax.set(title=task, xlabel="", ylabel="frames")
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


# --- what the backbone sees -------------------------------------------------------------------
def sampling_positions(T: int, n: int = 16, positions=None, save=None, run_dir=None) -> Figure:
    """Which of a window's ``T`` frames the backbone decodes (default: ``uniform_indices(T, n)``)."""
    pos = _to_numpy(uniform_indices(T, n) if positions is None else positions).astype(int)
    fig, axes = _figure(figsize=(10, 1.5), layout="constrained")
    ax = axes[0, 0]
    ax.vlines(np.arange(T), 0, 0.4, color=UNLABELED, lw=1)
    ax.vlines(pos, 0, 1, color="C3", lw=2)
    ax.plot(pos, np.ones(len(pos)), "o", color="C3", ms=4)
    ax.set_yticks([])
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(0, 1.25)
    ax.set(xlabel="frame in window", title=f"{len(pos)} of {T} frames sampled")
    ax.spines[["top", "right", "left"]].set_visible(False)
    return _finish(fig, f"sampling_T{T}", save, run_dir)


def sampled_frames(frames, indices: Sequence[int] | None = None, ncols: int = 8, title: str = "",
                   save=None, run_dir=None) -> Figure:
    """A grid of the sampled frames of a window, each titled with its frame index.

    Shapes:
        frames: (S, 3, H, W) or (S, H, W, 3), uint8 (or float in [0, 1]).
        indices: (S,) the frame index of each (default 0..S-1).
    """
    imgs = _as_hwc(frames)
    idx = list(range(len(imgs))) if indices is None else [int(i) for i in _to_numpy(indices)]
    if len(idx) != len(imgs):
        raise ValueError(f"{len(imgs)} frames but {len(idx)} indices")
    fig, axes = _grid(len(imgs), ncols)
    for ax, img, i in zip(axes, imgs, idx):
        ax.imshow(img)
        ax.set_title(f"frame {i}", fontsize="small")
    if title:
        fig.suptitle(title)
    return _finish(fig, "sampled_frames", save, run_dir)


def pose_frames(frames, keypoints, indices: Sequence[int] | None = None, edges=COCO17_EDGES,
                video_size: tuple[int, int] | None = None, ncols: int = 8, save=None, run_dir=None) -> Figure:
    """Frames with the skeleton drawn on top; joints with score <= 0 or NaN are skipped.

    Args:
        frames: (S, 3, H, W) or (S, H, W, 3) images, or None to draw the skeletons alone.
        keypoints: (S, J, 3) x, y, score in pixels of the original video.
        video_size: (width, height) of the original video when ``frames`` were resized
            (keypoints are scaled to the frame size); None = same size.
    """
    kp = _to_numpy(keypoints).astype(np.float64)
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must be (S, J, 3), got shape {tuple(kp.shape)}")
    imgs = None if frames is None else _as_hwc(frames)
    if imgs is not None and len(imgs) != len(kp):
        raise ValueError(f"{len(imgs)} frames but {len(kp)} keypoint frames")
    if imgs is not None and video_size is not None:
        kp = kp.copy()
        kp[..., 0] *= imgs.shape[2] / video_size[0]
        kp[..., 1] *= imgs.shape[1] / video_size[1]
    idx = list(range(len(kp))) if indices is None else [int(i) for i in _to_numpy(indices)]
    fig, axes = _grid(len(kp), ncols)
    for ax, s, i in zip(axes, range(len(kp)), idx):
        if imgs is not None:
            ax.imshow(imgs[s])
        else:
            ax.set_aspect("equal")
            ax.invert_yaxis()  # image coordinates: y grows downwards
        xy = kp[s, :, :2]
        ok = np.isfinite(xy).all(1) & ((kp[s, :, 2] > 0) if kp.shape[-1] == 3 else True)
        for a, b in edges:
            if a < len(ok) and b < len(ok) and ok[a] and ok[b]:
                ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="lime", lw=1.5)
        ax.plot(xy[ok, 0], xy[ok, 1], "o", color="red", ms=2.5)
        if imgs is not None:  # keep the image's extent: off-frame joints must not rescale it
            ax.set_xlim(-0.5, imgs.shape[2] - 0.5)
            ax.set_ylim(imgs.shape[1] - 0.5, -0.5)
        ax.set_title(f"frame {i}", fontsize="small")
    return _finish(fig, "pose_frames", save, run_dir)


def token_norms(last_hidden_state, grid: tuple[int, int, int] | None = None, title: str = "",
                save=None, run_dir=None) -> Figure:
    """Heat maps of patch-token L2 norms, one panel per token time step (shared colour scale).

    Example: ``token_norms(backbone.tokens(video), grid=backbone.token_grid)``.

    Shapes:
        last_hidden_state: 3D backbone ``(B, T'*h*w, D)``; 2D backbone ``(B, F, h*w, D)`` (the first
            item is drawn; a leading CLS token, i.e. ``T'*h*w + 1`` tokens, is dropped); or one
            item ``(T'*h*w, D)`` / ``(T', h, w, D)``.
        grid: (T', h, w); required unless the input is (T', h, w, D).
    """
    x = _to_numpy(last_hidden_state).astype(np.float32)
    if x.ndim == 4 and grid is None:
        grid = x.shape[:3]
    if grid is None:
        raise ValueError(f"token_norms needs grid=(T', h, w) for tokens of shape {tuple(x.shape)}")
    Tp, h, w = (int(g) for g in grid)
    if x.ndim == 3 or (x.ndim == 4 and tuple(x.shape[:3]) != (Tp, h, w)):
        x = x[0]  # the first item: (N, D) or (F, N, D)
    x = x.reshape(-1, x.shape[-1])  # (N, D)
    if x.shape[0] == Tp * h * w + 1:
        x = x[1:]  # drop the CLS token of a 2D ViT
    if x.shape[0] != Tp * h * w:
        raise ValueError(f"expected {Tp}*{h}*{w} = {Tp * h * w} tokens for grid {grid}, got {x.shape[0]}")
    norms = np.linalg.norm(x, axis=-1).reshape(Tp, h, w)  # (T', h, w)
    ncols = min(Tp, 8)
    nrows = math.ceil(Tp / ncols)
    fig, axes = _figure(nrows, ncols, figsize=(1.8 * ncols + 1, 1.9 * nrows + 0.4), layout="constrained")
    axes = list(axes.ravel())
    for ax in axes[Tp:]:
        fig.delaxes(ax)
    vmin, vmax = float(norms.min()), float(norms.max())
    for t, ax in enumerate(axes[:Tp]):
        im = ax.imshow(norms[t], cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(f"t'={t}", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[:Tp], label="token L2 norm", shrink=0.8)
    fig.suptitle(title or f"patch-token norms ({Tp} time steps x {h}x{w} patches)")
    return _finish(fig, "token_norms", save, run_dir)


# --- predictions on new videos ----------------------------------------------------------------
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
