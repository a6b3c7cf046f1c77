"""Runs in words and tables: what notebooks 03 and 04 print about a run and its evaluation.

- :func:`config_summary`: what a training run will use (data, backbone, windows, output);
- :func:`find_run`: the run to evaluate (the newest by default) and what it was trained on;
- :func:`run_files`: the files of a run folder and what each holds;
- :func:`metrics_table`, :func:`per_class_table`: an ``evaluate`` result as tables;
- :func:`read_predictions`: one video's per-frame predictions.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kit.config import RunConfig, resolve_path
from kit.results.inspect import DEMO_NOTE, backbone_choice, project_path
from kit.temporal.runs import latest_run

__all__ = ["config_summary", "find_run", "run_files", "metrics_table", "per_class_table", "behaviour_table",
           "run_thresholds",
           "read_predictions"]


def config_summary(cfg: RunConfig, output: bool = True) -> str:
    """A few lines saying what a training run uses: data, backbone, model, windows (and output folder)."""
    if cfg.uses_demo_data:
        data = f"the embedded DEMO data in {resolve_path(cfg.output_dir) / 'demo_data'} ({DEMO_NOTE})"
    else:
        data = cfg.data_root or f"annotations={cfg.annotations}, videos={cfg.videos}"
    lines = [f"[info] Data: {data}",
             backbone_choice(cfg),
             f"[info] Model: {cfg.model_type}, visual_mode={cfg.visual_mode}, use_pose={cfg.use_pose}, "
             f"freeze_backbone={cfg.freeze_backbone}, img_size={cfg.img_size}",
             f"[info] Training: {cfg.epochs} epochs, pipeline={cfg.resolved_pipeline} ("
             + ("whole videos, features extracted once" if cfg.resolved_pipeline == "whole_video"
                else f"windows train_T={cfg.train_T} / val_T={cfg.val_T}")
             + f"), batch_size={cfg.batch_size}, lr={cfg.lr}, seed={cfg.seed}"]
    if output:
        lines.append(f"[info] Output: {resolve_path(cfg.output_dir) / (cfg.run_name or '<timestamped run name>')}")
    return "\n".join(lines)


def find_run(run_dir: str | Path = "", output_dir: str | Path = "outputs") -> Path:
    """``run_dir`` (relative: from the project root), or the newest run under ``output_dir``.

    Prints which run it is and what it was trained on (the demo data and the tiny backbone say so).
    """
    run = Path(project_path(run_dir)) if str(run_dir) else latest_run(output_dir)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run} is not a run folder (no config.json): pass the folder that training "
                                "printed, e.g. outputs/<run_name>, or leave run_dir empty for the newest run")
    cfg = RunConfig.load(run / "config.json")
    how = "the newest run under " + str(resolve_path(output_dir)) if not str(run_dir) else "run_dir"
    print(f"[info] Run: {run} ({how})")
    print(config_summary(cfg, output=False))
    return run


_WHAT = {"config.json": "the full RunConfig", "labels.json": "class names per task (head order)",
         "splits.json": "videos per split", "history.csv": "one row per epoch",
         "metrics.json": "validation metrics of the best epoch", "last.pt": "checkpoint after the last epoch",
         "best.pt": "checkpoint of the best epoch", "train.log": "what the run printed",
         "thresholds.json": "per behaviour of a multi-label task, its threshold (chosen on val)"}


def run_files(run_dir: str | Path) -> pd.DataFrame:
    """The files of a run folder with their size and what they hold (folders summarised)."""
    run = Path(run_dir)
    rows = []
    for p in sorted(run.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            files = [f for f in p.rglob("*") if f.is_file()]
            what = {"predictions": "per-frame predictions, one CSV per video",
                    "figures": "PNGs written by kit.results.plots"}.get(p.name, "")
            rows.append((p.name + "/", round(sum(f.stat().st_size for f in files) / 1024, 1),
                         f"{len(files)} files" + (f": {what}" if what else "")))
        else:
            what = _WHAT.get(p.name, "evaluation metrics" if p.name.startswith("eval_") else "")
            rows.append((p.name, round(p.stat().st_size / 1024, 1), what))
    return pd.DataFrame(rows, columns=["file", "KiB", "what"]).set_index("file")


def metrics_table(result: dict) -> pd.DataFrame:
    """The metrics of a ``kit.results.evaluate.evaluate`` result: one row per task, scores in percent."""
    from kit.results.evaluate import METRICS

    tasks = {t: v for t, v in result.items() if isinstance(v, dict) and "acc" in v}
    return pd.DataFrame({t: {m: v.get(m) for m in METRICS} for t, v in tasks.items()}).T.rename_axis("task")


def per_class_table(result: dict) -> pd.DataFrame:
    """Precision, recall, F1 (%) and support per class of every task of an evaluate result."""
    parts = {t: pd.DataFrame(v["per_class"]).T for t, v in result.items()
             if isinstance(v, dict) and v.get("per_class")}
    if not parts:
        return pd.DataFrame(columns=["precision", "recall", "f1-score", "support"])
    return pd.concat(parts, names=["task", "class"]).astype({"support": int})


def behaviour_table(result: dict) -> pd.DataFrame:
    """Per behaviour of every multi-label task of an evaluate result: precision, recall, F1, average
    precision, edit, F1@k (%), its threshold, support and share of frames; empty without such a task."""
    parts = {t: pd.DataFrame(v["behaviours"]).T for t, v in result.items()
             if isinstance(v, dict) and v.get("multilabel")}
    if not parts:
        return pd.DataFrame(columns=["precision", "recall", "f1", "ap", "threshold", "support", "frames_pct"])
    return pd.concat(parts, names=["task", "behaviour"]).astype({"support": int})


def run_thresholds(run_dir: str | Path) -> pd.DataFrame:
    """``thresholds.json`` of a run as a table (task, behaviour -> threshold); empty without a multi-label task."""
    path = Path(run_dir) / "thresholds.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    rows = [(t, b, th) for t, per in data.items() for b, th in per.items()]
    return pd.DataFrame(rows, columns=["task", "behaviour", "threshold"]).set_index(["task", "behaviour"])


def read_predictions(run_dir: str | Path, video: str = "") -> pd.DataFrame:
    """``<run>/predictions/<video>.csv`` (the first one when ``video`` is empty)."""
    folder = Path(run_dir) / "predictions"
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no predictions in {folder}: run kit.results.evaluate.evaluate({str(run_dir)!r}) first")
    path = folder / f"{video}.csv" if video else files[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; predictions there: {', '.join(f.stem for f in files[:10])}")
    return pd.read_csv(path, keep_default_na=False)

