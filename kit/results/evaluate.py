"""Full-video evaluation of a trained run: ``evaluate(run_dir, split="val") -> dict``.

Loads the run's ``config.json``, ``labels.json``, ``splits.json`` and a checkpoint, predicts
every frame of every video of the split with windows of ``val_T`` that cover all frames
(overlapping windows' probabilities averaged; the same :func:`kit.temporal.pipeline.predict_videos`
that validates during training), and writes into the run folder::

    predictions/<video>.csv   frame, then per task <task>_true, <task>_pred, <task>_conf
                              (class names; "" = unlabeled; conf = the predicted class's probability)
    eval_<split>.json         {task: {acc, macro_f1, edit, f1@10, f1@25, f1@50, per_class,
                              confusion, labels}, videos, frames, checkpoint, epoch, split,
                              background}   (scores in percent, see kit.temporal.metrics)

Command line: ``python -m kit evaluate --run outputs/<run> [--split val] [--checkpoint best]``.

Legend: ``L`` frames in a video, ``C`` classes of a task.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.config import CHECKPOINTS, RunConfig, positive_int
from kit.errors import ConfigError, RunError, RunMissing
from kit.data import IGNORE_INDEX
from kit.temporal.metrics import confusion, per_class_report, task_metrics
from kit.temporal.model import build_model
from kit.temporal.pipeline import FrameLabeler, VideoPrediction, backbone_for, feature_cache, predict_videos
from kit.temporal.runs import latest_run, run_records
from kit.files import load_checkpoint, read_json, write_json

log = logging.getLogger("kit")
METRICS = ("acc", "macro_f1", "edit", "f1@10", "f1@25", "f1@50")


def evaluate(run_dir: str | Path | None = None, split: str = "val", checkpoint: str = "best",
             output_dir: str | Path = "outputs", batch_size: int | None = None, background=(),
             device: str | torch.device | None = None, progress: bool = False) -> dict:
    """Predicts every frame of a split with a run's checkpoint and scores it.

    Args:
        run_dir: the run folder; None = the newest run under ``output_dir``.
        split: ``train``, ``val`` or ``test`` (as saved in the run's ``splits.json``).
        checkpoint: ``best`` or ``last``.
        batch_size: windows per forward pass (default: the run's ``batch_size``).
        background: class names (or indices) left out of edit and F1@k, e.g. ``["idle"]``.
        device: default CUDA when available, else CPU.

    Returns:
        The dict written to ``<run>/eval_<split>.json``.
    """
    run = _run_folder(run_dir, output_dir)
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")  # [robust hook]
    if batch_size is not None and batch_size < 1:  # [robust hook]
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    cfg = RunConfig.load(run / "config.json")
    vocab = read_json(run / "labels.json")
    splits = read_json(run / "splits.json")
    if not splits.get(split):
        have = ", ".join(f"{k} ({len(v)} videos)" for k, v in splits.items()) or "none"
        raise ConfigError(f"run {run} has no videos in split {split!r}; its splits: {have}")  # [robust hook]
    state = load_checkpoint(run / f"{checkpoint}.pt")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    # [robust hook] only this split's videos are read and probed; a missing one is a DataError naming it
    records = run_records(cfg, output_dir=run.parent, stems=splits[split])  # demo data: beside the run
    by_stem = {r.stem: r for r in records}
    records = [by_stem[s] for s in splits[split]]

    backbone = backbone_for(cfg, freeze=True)
    trained_with = state.get("backbone_fingerprint", backbone.fingerprint)
    if trained_with != backbone.fingerprint:  # e.g. the 'auto' chain now finds another model
        raise RunError(f"run {run} was trained with backbone {trained_with}, but {backbone.fingerprint} "
                         "loaded now: restore that backbone (backbone_path, the HF cache) to evaluate this run")
    num_joints = state.get("num_joints", 17)
    head = build_model(cfg, backbone.feature_dim, vocab, num_joints=num_joints)
    labeler = FrameLabeler(backbone, head)
    labeler.load_checkpoint_state(state["model"])
    labeler.to(device).eval()
    cache = feature_cache(backbone, cfg, output_dir=run.parent)  # the one training filled

    preds = predict_videos(labeler, records, vocab, cfg.val_T, cfg.img_size, device, cache,
                           batch_size=batch_size or cfg.batch_size, progress=progress)
    tasks = list(labeler.head.tasks)
    (run / "predictions").mkdir(exist_ok=True)
    for p in preds:
        _prediction_table(p, vocab, tasks).to_csv(run / "predictions" / f"{p.stem}.csv", index=False)

    result = {task: _score(preds, task, vocab[task], background) for task in tasks}
    result.update(videos=len(preds), frames=int(sum(r.num_frames for r in records)),
                  checkpoint=checkpoint, epoch=int(state.get("epoch", -1)), split=split,
                  background=[str(b) for b in background])
    write_json(run / f"eval_{split}.json", result)
    return result


def _run_folder(run_dir, output_dir) -> Path:
    if run_dir is None or str(run_dir) == "":
        return latest_run(output_dir)
    run = Path(run_dir).expanduser()
    if not (run / "config.json").is_file():
        raise RunMissing(f"{run} is not a run folder (no config.json): pass the folder that "  # [robust hook]
                                "`python -m kit train` printed, e.g. outputs/<run_name>")
    return run


def _prediction_table(p: VideoPrediction, vocab: dict[str, list[str]], tasks: list[str]) -> pd.DataFrame:
    """One row per frame: ``frame``, then ``<task>_true, <task>_pred, <task>_conf`` per task."""
    L = len(p.labels[tasks[0]])
    cols = {"frame": np.arange(L)}
    for t in tasks:
        names = np.asarray(vocab[t] + [""], dtype=object)  # index -1 -> "" (unlabeled)
        true = p.labels[t]
        cols[f"{t}_true"] = names[np.where(true == IGNORE_INDEX, -1, true)]
        cols[f"{t}_pred"] = names[p.pred(t)]
        cols[f"{t}_conf"] = p.probs[t].max(1).round(4)  # (L,)
    return pd.DataFrame(cols)


def _score(preds: list[VideoPrediction], task: str, names: list[str], background) -> dict:
    p = [v.pred(task) for v in preds]
    g = [v.labels[task] for v in preds]
    out = {k: _finite(v) for k, v in task_metrics(p, g, names, background).items()}
    idx = list(range(len(names)))
    try:
        report = per_class_report(p, g, labels=idx, class_names=names)
        out["per_class"] = {name: {k: int(v) if k == "support" else _finite(v) for k, v in row.items()}
                            for name, row in report.to_dict(orient="index").items()}
    except ValueError:  # no labelled frame in the split for this task
        out["per_class"] = {}
    out["confusion"] = confusion(p, g, labels=idx).tolist()
    out["labels"] = list(names)
    return out


def _finite(v):
    """JSON-safe numbers: NaN (no labelled frame) becomes null."""
    v = float(v)
    return None if np.isnan(v) else round(v, 4)


# --- command line -------------------------------------------------------------------------
def main_evaluate(argv: list[str] | None = None) -> int:
    """``python -m kit evaluate --run outputs/<run> [--split val] [--checkpoint best|last]``."""
    ap = argparse.ArgumentParser(prog="python -m kit evaluate",
                                 description="Predict every frame of a split with a trained run and score it.")
    ap.add_argument("--run", default="", help="run folder (default: the newest run under --output_dir)")
    ap.add_argument("--split", default="val", help="train | val | test (default: val)")
    ap.add_argument("--checkpoint", default="best", choices=CHECKPOINTS, help="default: best")
    ap.add_argument("--output_dir", default="outputs", help="where to look for the newest run")
    ap.add_argument("--batch_size", type=positive_int, default=None, help="windows per forward pass")  # [robust hook]
    ap.add_argument("--background", nargs="*", default=[], help="class names left out of edit and F1@k")
    args = ap.parse_args(argv)
    # [robust hook] errors propagate: `python -m kit` prints user-facing ones in one line, bugs with traceback
    run = _run_folder(args.run or None, args.output_dir)
    res = evaluate(run, args.split, args.checkpoint, args.output_dir, args.batch_size, args.background)
    print(f"{run}  split={res['split']}  checkpoint={res['checkpoint']} (epoch {res['epoch']})  "
          f"videos={res['videos']}  frames={res['frames']}")
    print(format_table(res))
    print(f"wrote {run / f'eval_{args.split}.json'} and {run / 'predictions'}/<video>.csv")
    return 0


def format_table(result: dict) -> str:
    """The metrics of an ``evaluate`` result as a fixed-width table, one row per task."""
    tasks = [k for k, v in result.items() if isinstance(v, dict)]
    width = max([4] + [len(t) for t in tasks])
    lines = [f"{'task':<{width}}" + "".join(f"{m:>10}" for m in METRICS)]
    for t in tasks:
        cells = [result[t].get(m) for m in METRICS]
        lines.append(f"{t:<{width}}" + "".join(f"{'-':>10}" if v is None else f"{v:>10.2f}" for v in cells))
    return "\n".join(lines)
