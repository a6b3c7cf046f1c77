"""Experiment tracking through Accelerate's trackers: TensorBoard or trackio, chosen by ``report_to``.

``report_to="none"`` (the default) logs nothing and costs nothing. Otherwise :func:`start` hands
one tracker to the run's ``Accelerator`` (``init_trackers``) and the training loop reports through
``Accelerator.log`` (main process only):

- the config, as hyper-parameters (and, in TensorBoard, as text);
- per optimizer step: ``train/loss`` (the batch that completed the step) and ``train/lr``;
- per epoch: every number of the ``history.csv`` row, ``val/<task>_<metric>`` and ``epoch/<column>``;
- per epoch: figures of the validation predictions, ``confusion/<task>`` (rows normalised) and
  ``timeline/<task>`` (ground truth over prediction, first videos).

Everything is logged at the optimizer step, so loss curves and epoch metrics share one axis.

Where it goes: ``tensorboard`` writes event files into ``<run>/tensorboard/`` (``tensorboard --logdir
outputs`` shows every run, named by its folder); ``trackio`` (``pip install trackio``, not in
requirements.txt) logs into its local database (``~/.cache/huggingface/trackio``, or
``$TRACKIO_DIR``), project ``kit``, run = the run's name; ``trackio show`` opens it.

Legend: ``L`` frames of a video, ``K`` classes of a task.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from kit.config import RunConfig
from kit.data.labels import IGNORE_INDEX
from kit.temporal.metrics import confusion

PROJECT = "kit"  # trackio's project; TensorBoard needs none (one folder per run)
TIMELINE_VIDEOS = 4  # videos drawn per timeline figure


def start(acc, cfg: RunConfig, run_dir: Path) -> None:
    """Starts ``cfg.report_to``'s tracker on ``acc`` and logs the config (no-op for ``none``).

    Call on every process (the tracker only writes on the main one).
    """
    if cfg.report_to == "none":
        return
    from accelerate.tracking import TensorBoardTracker, TrackioTracker

    if cfg.report_to == "tensorboard":
        try:
            import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
        except ImportError as e:
            raise ImportError("report_to='tensorboard' needs the tensorboard package: pip install tensorboard "
                              "(it is in requirements.txt)") from e
        tracker = TensorBoardTracker("tensorboard", str(run_dir))  # -> <run>/tensorboard/
    else:
        try:
            import trackio  # noqa: F401
        except ImportError as e:
            raise ImportError("report_to='trackio' needs the trackio package: pip install trackio (not in "
                              "requirements.txt; it pins pillow<13)") from e
        tracker = TrackioTracker(PROJECT, name=run_dir.name, resume="allow")
    acc.log_with = [tracker]  # the run folder is known only now, after the Accelerator was made
    acc.init_trackers(PROJECT, config=hparams(cfg))
    if cfg.report_to == "tensorboard" and acc.is_main_process:
        text = "```\n" + json.dumps(cfg.to_dict(), indent=2) + "\n```"  # markdown: kept as one block
        acc.get_tracker("tensorboard", unwrap=True).add_text("config", text, global_step=0)


def hparams(cfg: RunConfig) -> dict:
    """The config as a tracker's hyper-parameters: numbers, strings and booleans (dicts as JSON)."""
    return {k: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for k, v in cfg.to_dict().items()}


def log_step(acc, loss: float, optimizer, step: int) -> None:
    """``train/loss`` and ``train/lr`` when an optimizer step was taken (``step`` = steps done)."""
    if not acc.trackers or not acc.sync_gradients:
        return
    acc.log({"train/loss": float(loss), "train/lr": float(optimizer.param_groups[0]["lr"])}, step=step)


def log_epoch(acc, row: dict, step: int, preds: Sequence = (), vocab: dict | None = None) -> None:
    """An epoch's ``history.csv`` row as scalars, and figures of its validation predictions.

    Args:
        row: ``{"epoch": n, "train_loss": ..., "val_action_acc": ..., ...}``.
        step: optimizer steps done (the x axis of every curve).
        preds: ``kit.temporal.sequences.VideoPrediction`` of the validation videos.
        vocab: ``{task: class names}``.
    """
    if not acc.trackers:
        return
    scalars = {}
    for k, v in row.items():
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v):
            metric = k.startswith("val_") and k != "val_s"  # val_s: the validation's seconds
            scalars[f"val/{k[4:]}" if metric else f"epoch/{k}"] = float(v)
    acc.log(scalars, step=step)
    if preds and vocab:
        figures = {}
        for task, names in vocab.items():
            if task in preds[0].probs and task not in preds[0].multilabel:  # behaviours: in eval_<split>.json
                figures[f"confusion/{task}"] = confusion_figure(preds, task, names, f"{task}, epoch {row['epoch']}")
                figures[f"timeline/{task}"] = timeline_figure(preds, task, names, f"{task}, epoch {row['epoch']}")
        log_figures(acc, figures, step)


def log_figures(acc, figures: dict, step: int) -> None:
    """Matplotlib figures: TensorBoard's ``add_figure``; trackio as images."""
    if not acc.trackers or not acc.is_main_process:
        return
    for tracker in acc.trackers:
        if tracker.name == "tensorboard":
            for tag, fig in figures.items():
                tracker.tracker.add_figure(tag, fig, global_step=step, close=False)
            tracker.tracker.flush()
        elif tracker.name == "trackio":
            import trackio

            tracker.log({tag: trackio.Image(_pixels(fig)) for tag, fig in figures.items()}, step=step)


def _pixels(fig) -> np.ndarray:
    """A figure as ``(H, W, 3)`` uint8 RGB."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# --- the figures (drawn here: the results layer's plots sit above the training loop) -----------------
def confusion_figure(preds: Sequence, task: str, names: Sequence[str], title: str = ""):
    """Row-normalised confusion matrix of ``task`` over the videos (rows: ground truth)."""
    from matplotlib.figure import Figure

    cm = confusion([p.pred(task) for p in preds], [p.labels[task] for p in preds], labels=list(range(len(names))))
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)  # (K, K)
    K = len(names)
    fig = Figure(figsize=(1.2 + 0.55 * K, 1.0 + 0.5 * K), layout="constrained")  # no pyplot: nothing to close
    ax = fig.subplots()
    ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(K), names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(K), names, fontsize="small")
    for i in range(K):
        for j in range(K):
            if cm[i, j]:
                ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize="x-small",
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="prediction", ylabel="ground truth", title=f"confusion (%), {title}")
    return fig


def timeline_figure(preds: Sequence, task: str, names: Sequence[str], title: str = ""):
    """Ground truth (upper) over prediction (lower) per video, one colour per class, grey unlabelled."""
    import matplotlib
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    shown = list(preds)[:TIMELINE_VIDEOS]
    K = len(names)
    base = matplotlib.colormaps["tab10" if K <= 10 else "tab20" if K <= 20 else "turbo"]
    colors = [base(i if K <= 20 else i / max(K - 1, 1)) for i in range(K)] + [(0.81, 0.81, 0.81, 1.0)]
    fig = Figure(figsize=(9, 0.3 + 0.75 * len(shown)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(shown), 1, squeeze=False)[:, 0])
    for ax, p in zip(axes, shown):
        gt = np.where(p.labels[task] == IGNORE_INDEX, K, p.labels[task])  # (L,)
        gt = np.where(gt < 0, K, gt)  # classes unseen in training: drawn as unlabelled
        ax.imshow(np.stack([gt, p.pred(task)]), aspect="auto", interpolation="nearest",
                  cmap=ListedColormap(colors), vmin=-0.5, vmax=K + 0.5)
        ax.set_yticks([0, 1], ["truth", "pred"], fontsize="x-small")
        ax.set_xticks([])
        ax.set_ylabel(p.stem, rotation=0, ha="right", va="center", fontsize="x-small")
    axes[0].set_title(f"timelines, {title}", fontsize="small")
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colors, list(names) + ["unlabelled"])],
               loc="outside right upper", fontsize="x-small")
    return fig
