"""Files written safely: JSON, CSV rows and checkpoints, each replaced atomically; run-folder locks.

Every write goes to a temporary file in the same folder, is flushed to disk, then renamed over
the target (atomic on POSIX): a crash mid-write leaves the previous file intact, never half of a
new one. The new file gets the permissions a plain ``open(..., "w")`` would give it (the umask's,
or the replaced file's own), not the temporary file's 600. JSON is strict: NaN and infinities are
written as ``null``. Checkpoints are read with ``torch.load(weights_only=True)``: they hold only
tensors and plain Python values, never pickled code.

:func:`hold_lock` keeps other processes out of a folder while one writes it (``flock`` on a lock
file; a lock left by a killed process is released by the kernel and simply taken over).
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import secrets
import socket
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from kit.errors import CheckpointError, DataFileError, RunLocked


def write_json(path: str | Path, obj) -> None:
    """``obj`` as indented JSON; non-finite floats become ``null`` (``NaN`` is not JSON)."""
    text = json.dumps(_finite(obj), indent=2, allow_nan=False)
    _atomic_write(Path(path), lambda f: f.write(text.encode() + b"\n"))


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalars
        return _finite(obj.item())
    return obj


def read_json(path: str | Path):
    """A JSON file's value; :class:`DataFileError` naming the file (line, column) when it is not JSON.

    A missing file stays a ``FileNotFoundError`` (callers test for it); an empty or damaged one
    (a disk that filled up, an editor's half-saved copy) says where and what to do.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); restore the file "
                            "(the kit wrote it as JSON)") from None
    if not text.strip():
        raise DataFileError(f"{path}: empty file; restore it from a copy, or run the step that writes it again")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno} ({e.msg}); restore the "
                            "file from a copy, or run the step that writes it again") from None


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
    """A checkpoint's dict; :class:`CheckpointError` naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.exists()
                              else f"checkpoint {path} is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated, empty or foreign file: say which and what to do
        why = (str(e).strip().splitlines() or [""])[0][:200]
        what = "an empty file" if path.stat().st_size == 0 else f"{type(e).__name__}{': ' + why if why else ''}"
        raise CheckpointError(
            f"cannot read checkpoint {path} ({what}). If a run was killed while saving, the other checkpoint of "
            "the run (last.pt / best.pt) is still intact: pass --checkpoint last or best.") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a kit checkpoint (a dict)")
    return state


def file_mode(path: Path) -> int:
    """The permissions a new file at ``path`` gets: the existing file's, else ``0o666`` less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide and racy with threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
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
    mode = file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp makes 600; a file the kit writes keeps the umask's permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- locks ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def hold_lock(path: str | Path, what: str):
    """Holds an exclusive lock on the file ``path`` (created if needed) for the ``with`` block.

    Args:
        path: the lock file, e.g. ``<run>/.lock``; it is removed again on exit.
        what: what the holder is doing (``"train"``), shown to a process that finds it locked.

    Raises:
        RunLocked: a live process holds it; the message names its PID, host, purpose and start.

    ``flock`` locks belong to the open file, so the kernel drops them when the holder dies, even
    by SIGKILL: a lock file left behind is stale and is taken over. Where ``flock`` is not
    supported (some network file systems) the PID written in the file decides instead.
    """
    import fcntl

    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode(path))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) or _alive(holder):
                os.close(fd)  # held; or, where flock is unsupported, the recorded PID still runs
                raise RunLocked(_locked_message(path, holder)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the previous holder removed the file between our open and flock: try again
            break
        os.close(fd)
    stale = _read_holder(fd)
    if stale:  # the file outlived its holder (killed before it could remove it): ours now
        logging.getLogger("kit").warning(
            f"[warn] {path.parent}: taking over a stale lock of process {stale.get('pid')} ({stale.get('what')}, "
            f"since {stale.get('since')}), which ended without releasing it")
    try:
        os.ftruncate(fd, 0)
        info = dict(pid=os.getpid(), host=socket.gethostname(), what=what, since=time.strftime("%Y-%m-%d %H:%M:%S"))
        os.write(fd, (json.dumps(info) + "\n").encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding it: a waiting process then sees a fresh file
        os.close(fd)


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _alive(holder: dict) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def _locked_message(path: Path, holder: dict) -> str:
    who = (f"process {holder.get('pid')} on {holder.get('host')} ({holder.get('what')}, since {holder.get('since')})"
           if holder else "another process")
    return (f"{path.parent} is in use by {who}: two processes writing one run folder would mix their files. "
            f"Wait for it to finish, or use another run_name")
