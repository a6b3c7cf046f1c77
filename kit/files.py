"""Files written safely: JSON, CSV rows and checkpoints, each replaced atomically.

Every write goes to a temporary file in the same folder, is flushed to disk, then renamed over
the target (atomic on POSIX): a crash mid-write leaves the previous file intact, never half of a
new one. Checkpoints are read with ``torch.load(weights_only=True)``: they hold only tensors and
plain Python values, never pickled code.
"""
from __future__ import annotations

import json
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch


def write_json(path: str | Path, obj) -> None:
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2).encode() + b"\n"))


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def append_history(path: str | Path, row: dict) -> None:
    """Append one epoch's row to ``history.csv`` (rewritten whole, so columns may grow)."""
    path = Path(path)
    df = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    df = df[df["epoch"] != row["epoch"]] if "epoch" in df else df  # a resumed epoch replaces its row
    df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    _atomic_write(path, lambda f: f.write(df.to_csv(index=False).encode()))


def read_history(run: str | Path) -> pd.DataFrame:
    path = Path(run) / "history.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the run has not finished an epoch yet")
    return pd.read_csv(path)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it (atomic on POSIX)."""
    _atomic_write(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and what to do
        raise RuntimeError(
            f"cannot read checkpoint {path} ({type(e).__name__}: {e}). If a run was killed while "
            "saving, the other checkpoint of the run (last.pt / best.pt) is still intact.") from e


@contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False):
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends without error.

    For writers that take a file name (video encoders, ``savefig``, ``Path.write_text``). The
    temporary file is hidden (``.<name>.<random>.tmp``) and removed on error; ``keep_suffix`` ends
    it with ``path``'s suffix too, for writers that pick the format from the extension.

    Example::

        with atomic_path("out/a.csv") as tmp:
            df.to_csv(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # created with open(): the umask applies, so the result is as readable as any file
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix if keep_suffix else ''}"
        try:
            open(tmp, "xb").close()
            break
        except FileExistsError:
            continue
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
