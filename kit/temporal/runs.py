"""The run folder ``outputs/<run_name>/``: everything needed to understand and resume a run.

Layout::

    config.json          the full RunConfig (load it with RunConfig.load)
    labels.json          {task: [class names]} from the training split, in head order
    splits.json          {split: [video stems]}
    history.csv          one row per epoch: losses, learning rate, validation metrics, timings
    metrics.json         validation metrics of the best epoch
    last.pt / best.pt    checkpoints (model, optimizer, scheduler step, scaler, RNG states, epoch, config)
    train.log            what the run printed (and the traceback of an error that ended it)
    predictions/         written by evaluate: <video>.csv per frame (ground truth and prediction per task)
    eval_<split>.json    written by evaluate
    figures/             PNGs written by kit.results.plots
    .lock                while a process writes the run (kit.files.hold_lock)
    .replaced-<time>/    an earlier run of the same name, moved aside by overwrite=True

Checkpoints are written atomically (temporary file in the same folder, fsync, rename), so a crash
during a save leaves the previous checkpoint intact; they are read with
``torch.load(weights_only=True)``: they hold only tensors and plain Python values.

:func:`open_run` is how a trainer enters a run folder: it checks the name, refuses to mix a new
run into an old one (``resume`` continues it, ``overwrite`` moves its files aside), locks the
folder against a second writer, and turns Ctrl-C into a message saying what was saved.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kit.config import RunConfig, check_run_name, field_names, resolve_path
from kit.errors import ConfigError, RunError, RunInterrupted, RunMissing, log_traceback_to_files
from kit.files import hold_lock
from kit.log import log_to_file

log = logging.getLogger("kit")


def new_run_name(output_dir: str | Path | None = None) -> str:
    """``run-YYYYmmdd-HHMMSS``; with ``output_dir``, a ``-2``, ``-3``... suffix if that run exists."""
    name = time.strftime("run-%Y%m%d-%H%M%S")
    if output_dir is None:
        return name
    root, n, unique = resolve_path(output_dir), 1, name
    while (root / unique).exists():
        n += 1
        unique = f"{name}-{n}"
    return unique


def run_dir(cfg: RunConfig) -> Path:
    """``<output_dir>/<run_name>`` (relative output_dir resolved against the project root)."""
    if not cfg.run_name:
        raise ConfigError("RunConfig.run_name is empty: call fit() (which names the run) or set it")
    return resolve_path(cfg.output_dir) / check_run_name(cfg.run_name)


def latest_run(output_dir: str | Path = "outputs") -> Path:
    """The newest run folder (by the time of its last checkpoint) under ``output_dir``."""
    root = resolve_path(output_dir)
    runs = [p.parent for p in root.glob("*/config.json") if any(p.parent.glob("*.pt"))]
    if not runs:
        raise RunMissing(
            f"no trained run under {root} (a run folder holds config.json and last.pt). "
            "Train one first: notebooks/03_train.ipynb or `python -m kit train`.")
    return max(runs, key=lambda p: max(f.stat().st_mtime for f in p.glob("*.pt")))




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




# --- entering a run folder ------------------------------------------------------------------------
RESULTS = ("last.pt", "best.pt", "history.csv", "metrics.json")  # a run that has these has something to lose
RUN_FILES = ("config.json", "labels.json", "splits.json", "history.csv", "metrics.json", "last.pt", "best.pt",
             "train.log", "eval_*.json", "predictions", "figures", ".*.tmp")  # what the kit writes in a run
LOCK = ".lock"
RESUMABLE = ("epochs", "num_workers", "resume", "overwrite", "output_dir", "run_name", "report_to")  # may change


@dataclass
class OpenRun:
    """A run folder held by this process: its path, the config to train with, where an old run went."""

    dir: Path
    cfg: RunConfig
    replaced: Path | None = None


@contextlib.contextmanager
def open_run(cfg: RunConfig, writer: bool = True):
    """Enters ``<output_dir>/<run_name>`` for training; yields an :class:`OpenRun`.

    Checks, in order: the name (:func:`kit.config.check_run_name`); that ``output_dir`` is a
    folder; with ``resume``, that there is a run to continue with the same settings
    (:func:`resumed_config`); without it, that no earlier run's results would be mixed in (error
    naming ``--resume`` and ``--overwrite``), or with ``overwrite`` moves that run's files aside.
    The writer then holds the folder's lock (:func:`kit.files.hold_lock`) and logs to
    ``train.log``; an error that ends the run leaves its traceback there, and Ctrl-C becomes
    :class:`kit.errors.RunInterrupted` saying which epoch ``last.pt`` holds.

    Args:
        writer: False on the other processes of a multi-process run: they check and resume alike
            (so all of them fail the same way) but never write, lock or move anything.
    """
    cfg = cfg if cfg.run_name else cfg.replace(run_name=new_run_name(cfg.output_dir))
    out = run_dir(cfg)
    _check_output_dir(out)
    if cfg.resume:
        cfg = resumed_config(cfg, out)
    elif not cfg.overwrite:
        _refuse_existing(out, cfg)
    if not writer:
        yield OpenRun(out, cfg.replace(overwrite=False))
        return
    out.mkdir(parents=True, exist_ok=True)
    with hold_lock(out / LOCK, "train"):
        replaced = None
        if cfg.overwrite:
            replaced = move_aside(out)
            cfg = cfg.replace(overwrite=False)  # done: a config.json copied elsewhere must not overwrite again
        elif not cfg.resume:
            _refuse_existing(out, cfg)  # again, under the lock: another run may have finished meanwhile
        log_to_file(out / "train.log")
        if replaced is not None:
            log.info(f"[info] overwrite: the previous run's files were moved to {replaced}")
        try:
            yield OpenRun(out, cfg, replaced)
        except KeyboardInterrupt as e:
            message = interrupted_message(out, cfg)
            log.warning(f"[warn] {message}")
            raise RunInterrupted(message) from e
        except BaseException as e:
            log_traceback_to_files(e, log)
            raise


def _check_output_dir(out: Path) -> None:
    for p in (out.parent, out):
        if p.exists() and not p.is_dir():
            raise RunError(f"{p} is a file, not a folder: point output_dir at a folder (runs land in "
                           "<output_dir>/<run_name>/)")
    base = next((p for p in out.parents if p.exists()), None)
    try:
        limit = os.pathconf(base, "PC_NAME_MAX") if base is not None else 255
    except (OSError, ValueError):
        limit = 255
    if len(out.name.encode()) > limit:
        raise ConfigError(f"RunConfig.run_name is {len(out.name.encode())} bytes; the file system of {base} "
                          f"allows {limit}: choose a shorter name")


def _refuse_existing(out: Path, cfg: RunConfig) -> None:
    found = [n for n in RESULTS if (out / n).exists()]
    if found:
        raise RunError(f"{out} already holds a run ({', '.join(found)}); training again under run_name="
                       f"{cfg.run_name!r} would mix the two. Continue it with --resume (resume=True), start it "
                       "afresh with --overwrite (overwrite=True: its files move to a .replaced-<time>/ folder "
                       "inside it, nothing is deleted), or choose another run_name")


def move_aside(out: Path) -> Path | None:
    """Moves the kit's files of a run (``RUN_FILES``) into ``<out>/.replaced-<time>/``; None if none.

    Nothing is deleted, and files the kit does not write there (your notes, say) stay in place.
    """
    names = sorted({p.name for pattern in RUN_FILES for p in out.glob(pattern)} - {LOCK})
    if not names:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = out / f".replaced-{stamp}"
    n = 1
    while dest.exists():
        n += 1
        dest = out / f".replaced-{stamp}-{n}"
    dest.mkdir()
    for name in names:
        os.rename(out / name, dest / name)
    return dest


def resumed_config(cfg: RunConfig, out: Path) -> RunConfig:
    """The run's saved config, with the fields a resume may change taken from ``cfg``.

    ``--run_name NAME --resume`` alone continues the run exactly as it was configured; a field
    set to something else than both its default and the saved value is an error, not a silent
    change of data, model or optimisation halfway through a run.
    """
    if not (out / "last.pt").is_file() or not (out / "config.json").is_file():
        raise RunMissing(f"resume=True but {out / 'last.pt'} does not exist: nothing to resume "
                         "(check output_dir and run_name, or drop --resume to start afresh)")
    saved, default = RunConfig.load(out / "config.json"), RunConfig()
    clash = [f"{k}={getattr(cfg, k)!r} (the run has {getattr(saved, k)!r})" for k in field_names()
             if k not in RESUMABLE and getattr(cfg, k) not in (getattr(default, k), getattr(saved, k))]
    if clash:
        raise RunError(f"--resume continues {out} with its saved config.json, but these differ: "
                       f"{'; '.join(clash)}. Drop them, or start a new run_name.")
    epochs = cfg.epochs if cfg.epochs != default.epochs else saved.epochs
    report_to = cfg.report_to if cfg.report_to != default.report_to else saved.report_to
    return saved.replace(resume=True, overwrite=False, epochs=epochs, num_workers=cfg.num_workers,
                         output_dir=cfg.output_dir, run_name=cfg.run_name, report_to=report_to)


def lock_run(run: str | Path, what: str):
    """``with lock_run(run_dir, "evaluate"):`` keeps other writers (training, evaluation) out of a run."""
    return hold_lock(Path(run) / LOCK, what)


def interrupted_message(out: Path, cfg: RunConfig) -> str:
    """What Ctrl-C leaves: the epoch ``last.pt`` holds and the command that continues from it."""
    epoch = None
    with contextlib.suppress(Exception):  # mmap: only the few bytes of "epoch" are read
        epoch = torch.load(out / "last.pt", map_location="cpu", weights_only=True, mmap=True)["epoch"]
    if not epoch:
        return (f"interrupted: no epoch of run {cfg.run_name!r} finished, so there is nothing to resume; "
                "run the same command again to start it over")
    where = f" --output_dir {cfg.output_dir}" if cfg.output_dir != RunConfig().output_dir else ""
    return (f"interrupted: last.pt holds epoch {epoch} of {cfg.epochs}; `python -m kit train --run_name "
            f"{cfg.run_name}{where} --resume` continues (in Python: RunConfig(run_name={cfg.run_name!r}, "
            "resume=True))")


def best_metrics(epoch: int, val: dict, train: dict) -> dict:
    """What ``metrics.json`` holds: the best epoch's validation metrics (no timings, no counters).

    Without validation videos the best epoch is the one with the lowest training loss, and that
    loss is its only metric.
    """
    if val:
        return {"epoch": epoch, **val}
    return {"epoch": epoch, "train_loss": train["train_loss"]}
