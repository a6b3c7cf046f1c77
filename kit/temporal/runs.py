"""The run folder ``outputs/<run_name>/``: everything needed to understand and resume a run.

Layout::

    config.json          the full RunConfig (load it with RunConfig.load)
    labels.json          {task: [class names]} from the training split, in head order
    splits.json          {split: [video stems]}
    history.csv          one row per epoch: losses, learning rate, validation metrics, timings
    metrics.json         validation metrics of the best epoch
    last.pt / best.pt    checkpoints (model, optimizer, scheduler step, scaler, RNG states, epoch, config)
    train.log            what the run printed
    predictions/         written by evaluate: <video>.csv per frame (ground truth and prediction per task)
    eval_<split>.json    written by evaluate
    figures/             PNGs written by kit.results.plots

Checkpoints are written atomically (temporary file in the same folder, fsync, rename), so a crash
during a save leaves the previous checkpoint intact; they are read with
``torch.load(weights_only=True)``: they hold only tensors and plain Python values.
"""
from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.config import RunConfig, resolve_path
from kit.data.dataset import RunData, data_paths, dataset_format, run_data, run_records, run_splits  # noqa: F401

log = logging.getLogger("kit")


def new_run_name() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S")


def run_dir(cfg: RunConfig) -> Path:
    """``<output_dir>/<run_name>`` (relative output_dir resolved against the project root)."""
    if not cfg.run_name:
        raise ValueError("RunConfig.run_name is empty: call fit() (which names the run) or set it")
    return resolve_path(cfg.output_dir) / cfg.run_name


def latest_run(output_dir: str | Path = "outputs") -> Path:
    """The newest run folder (by the time of its last checkpoint) under ``output_dir``."""
    root = resolve_path(output_dir)
    runs = [p.parent for p in root.glob("*/config.json") if any(p.parent.glob("*.pt"))]
    if not runs:
        raise FileNotFoundError(
            f"no trained run under {root} (a run folder holds config.json and last.pt). "
            "Train one first: notebooks/03_train.ipynb or `python -m kit train`.")
    return max(runs, key=lambda p: max(f.stat().st_mtime for f in p.glob("*.pt")))


# --- the data a run uses: kit.data.dataset (re-exported here for callers of kit 0.1) ----------------


def rng_state() -> dict:
    """Every random generator the training loop touches, as weights_only-loadable values."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}
    if torch.cuda.is_available():  # this process's own device only: other ranks' states are theirs
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if isinstance(state.get("cuda"), torch.Tensor) and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


