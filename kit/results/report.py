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

from kit.config import RunConfig, project_root, resolve_path
from kit.errors import RunMissing
from kit.results.inspect import DEMO_NOTE, backbone_choice
from kit.temporal.runs import latest_run

__all__ = ["config_summary", "find_run", "resolve_run", "RunNotFound", "for_people", "run_files", "metrics_table",
           "per_class_table", "behaviour_table", "run_thresholds", "read_predictions"]


def config_summary(cfg: RunConfig, output: bool = True) -> str:
    """A few lines saying what a training run uses: data, backbone, model, windows (and output folder)."""
    if cfg.uses_demo_data:
        data = f"the embedded DEMO data in {resolve_path(cfg.output_dir) / 'demo_data'} ({DEMO_NOTE})"
    else:
        data = cfg.data_root or f"annotations={cfg.annotations}, videos={cfg.videos}"
    lines = [f"[info] Data: {data}",
             backbone_choice(cfg),
             f"[info] Model: {cfg.model_type}, temporal_model={cfg.temporal_model}, visual_mode={cfg.visual_mode}, "
             f"use_pose={cfg.use_pose}, "
             f"freeze_backbone={cfg.freeze_backbone}, img_size={cfg.img_size}",
             f"[info] Training: {cfg.epochs} epochs, pipeline={cfg.resolved_pipeline} ("
             + ("whole videos, features extracted once" if cfg.resolved_pipeline == "whole_video"
                else f"windows train_T={cfg.train_T} / val_T={cfg.val_T}")
             + f"), batch_size={cfg.batch_size}, lr={cfg.lr}, seed={cfg.seed}"]
    if output:
        lines.append(f"[info] Output: {resolve_path(cfg.output_dir) / (cfg.run_name or '<timestamped run name>')}")
    return "\n".join(lines)


class RunNotFound(RunMissing):
    """A ``run_dir`` that names no run folder; a notebook shows this one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mRunNotFound\x1b[0m: {self}"]


def resolve_run(run_dir: str | Path = "", output_dir: str | Path = "outputs") -> Path:
    """The run folder ``run_dir`` names; the newest run under ``output_dir`` when it is empty.

    ``run_dir`` may be an absolute path, a path relative to the current folder (a notebook's kernel
    runs in the notebook's folder: ``../outputs/run-...``), relative to the project root
    (``outputs/run-...``), or a run name looked up under ``output_dir`` (``run-20250101-120000``);
    the first of these that holds a ``config.json`` is the run.

    Raises:
        RunNotFound: one line saying what was tried and which runs there are.
    """
    if not str(run_dir):
        return latest_run(output_dir)
    given = Path(run_dir).expanduser()
    tried = [given] if given.is_absolute() else [Path.cwd() / given, project_root() / given,
                                                   resolve_path(output_dir) / given]
    for p in dict.fromkeys(tried):
        if (p / "config.json").is_file():
            return p.resolve()
    runs = sorted(p.parent.name for p in resolve_path(output_dir).glob("*/config.json"))
    hint = (f"runs under {resolve_path(output_dir)}: {', '.join(runs[-5:])}" if runs
            else f"no run under {resolve_path(output_dir)}: train one first (notebook 03)")
    where = " or ".join(str(p) for p in dict.fromkeys(tried))
    raise RunNotFound(f"run_dir={str(run_dir)!r} is not a run folder (no config.json in {where}); pass a run name, "
                      f"a path relative to this folder or an absolute path, or \"\" for the newest run ({hint})")


def find_run(run_dir: str | Path = "", output_dir: str | Path = "outputs") -> Path:
    """The run :func:`resolve_run` finds (the newest by default), printing what it was trained on.

    The demo data and the tiny backbone say so.
    """
    run = resolve_run(run_dir, output_dir)
    cfg = RunConfig.load(run / "config.json")
    how = "the newest run under " + str(resolve_path(output_dir)) if not str(run_dir) else f"run_dir={str(run_dir)!r}"
    print(f"[info] Run: {run} ({how})")
    print(config_summary(cfg, output=False))
    return run


NO_MULTILABEL = "this run has no multi-label task (cells like groom|rear): see docs/guides/labels.md"

_WHAT = {"config.json": "the full RunConfig", "labels.json": "class names per task (head order)",
         "splits.json": "videos per split", "history.csv": "one row per epoch",
         "metrics.json": "validation metrics of the best epoch", "last.pt": "checkpoint after the last epoch",
         "best.pt": "checkpoint of the best epoch", "train.log": "what the run printed",
         "thresholds.json": "per behaviour of a multi-label task, its threshold (chosen on val)",
         "skeleton.json": "the pose graph's joints, edges and individuals"}


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
                    "figures": "PNGs written by kit.results.plots", "predict": "outputs of predict (its default)",
                    "tensorboard": "event files (report_to)"}.get(p.name, "")
            rows.append((p.name + "/", round(sum(f.stat().st_size for f in files) / 1024, 1),
                         f"{len(files)} files" + (f": {what}" if what else "")))
        else:
            what = _WHAT.get(p.name, "evaluation metrics" if p.name.startswith("eval_") else "")
            rows.append((p.name, round(p.stat().st_size / 1024, 1), what))
    return pd.DataFrame(rows, columns=["file", "KiB", "what"]).set_index("file")


def for_people(df: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """A table to read, not to compute with: floats rounded (``*_pct`` and ``*%`` columns to one
    decimal, the rest to ``digits``), NaN (a mean over nothing) shown empty."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            pct = str(col).endswith(("_pct", "%"))
            out[col] = out[col].round(1 if pct else digits)
            if out[col].isna().any():
                out[col] = out[col].astype(object).where(out[col].notna(), "")
    return out


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
    precision, edit, F1@k (%), its threshold, support and share of frames; without such a task, one
    ``note`` row saying so."""
    parts = {t: pd.DataFrame(v["behaviours"]).T for t, v in result.items()
             if isinstance(v, dict) and v.get("multilabel")}
    if not parts:  # said in the table itself, not an empty grid of headers
        return pd.DataFrame({"note": [NO_MULTILABEL]})
    return pd.concat(parts, names=["task", "behaviour"]).astype({"support": int})


def run_thresholds(run_dir: str | Path) -> pd.DataFrame:
    """``thresholds.json`` of a run as a table (task, behaviour -> threshold); without a multi-label task,
    one ``note`` row saying so."""
    path = Path(run_dir) / "thresholds.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    rows = [(t, b, th) for t, per in data.items() for b, th in per.items()]
    if not rows:
        return pd.DataFrame({"note": [NO_MULTILABEL]})
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

