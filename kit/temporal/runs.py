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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.config import RunConfig, resolve_path
from kit.data.contract import VideoRecord, load_records, split_records
from kit.data.demo import demo_root
from kit.data.mstcn import is_mstcn_layout, load_mstcn

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


# --- the data a run uses ---------------------------------------------------------------------------
def data_paths(cfg: RunConfig, output_dir: str | Path | None = None) -> dict[str, str]:
    """The data folders a config names; the embedded demo data (generated when absent) if none.

    The demo data lives in ``<output_dir>/demo_data``; ``output_dir`` defaults to the config's.
    """
    if cfg.uses_demo_data:
        root = demo_root(resolve_path(output_dir or cfg.output_dir))
        log.info(f"[info] No data given: using the embedded demo data in {root}")
        return dict(data_root=str(root), annotations="", videos="", poses="", splits="")
    return dict(data_root=cfg.data_root, annotations=cfg.annotations, videos=cfg.videos,
                poses=cfg.poses, splits=cfg.splits)


def run_records(cfg: RunConfig, output_dir: str | Path | None = None) -> list[VideoRecord]:
    """Every video of the config's data, checked (``kit.data.load_records``)."""
    return run_splits(cfg, output_dir)[0]


@dataclass
class RunData:
    """A run's videos: all records, ``{train, val, test: [VideoRecord]}``, and the class list when the
    dataset defines one (``mapping.txt`` of the MS-TCN layout; None: the vocabulary comes from training)."""

    records: list[VideoRecord]
    splits: dict[str, list[VideoRecord]]
    vocab: dict[str, list[str]] | None = None


def dataset_format(cfg: RunConfig) -> str:
    """``kit`` or ``mstcn``: ``auto`` is the MS-TCN layout when ``data_root`` holds it."""
    if cfg.dataset_format != "auto":
        return cfg.dataset_format
    return "mstcn" if cfg.data_root and is_mstcn_layout(resolve_path(cfg.data_root)) else "kit"


def run_data(cfg: RunConfig, output_dir: str | Path | None = None) -> RunData:
    """Every video of the config's data, checked, split as training splits it (``split_seed``)."""
    if dataset_format(cfg) == "mstcn":
        records, splits, vocab = load_mstcn(resolve_path(cfg.data_root), cfg.split_index, cfg.fps)
        return RunData(records, splits, vocab)
    paths = data_paths(cfg, output_dir)
    records = load_records(paths["data_root"], paths["annotations"], paths["videos"], paths["poses"])
    return RunData(records, split_records(records, paths["splits"], cfg.val_fraction, cfg.test_fraction,
                                          cfg.split_seed))


def run_splits(cfg: RunConfig, output_dir: str | Path | None = None) -> tuple[list[VideoRecord], dict]:
    """Every video of the config's data and ``{train, val, test: [VideoRecord]}`` as training splits them."""
    data = run_data(cfg, output_dir)
    return data.records, data.splits


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


