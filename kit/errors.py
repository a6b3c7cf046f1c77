"""Errors a user can act on, told apart from bugs.

Every failure the kit expects (bad data, a bad config value, a backbone it cannot find, a run
folder it must not overwrite, an unreadable checkpoint) raises a subclass of :class:`KitError`
whose message names the thing that is wrong and the fix. The command line (``kit/__main__.py``)
prints such an error as ``error: <message>`` with no traceback and exits non-zero; any other
exception is a bug and keeps its traceback. Each class also derives from the builtin a caller
would have caught before (``ValueError``, ``RuntimeError``, ...), so ``except ValueError`` keeps
working.

DataLoader worker processes re-raise an exception in the main process as the same class with
the worker's whole traceback pasted into the message; :func:`unwrap` recovers the original
message.
"""
from __future__ import annotations

import logging
import re


class KitError(Exception):
    """Base class of the errors a user can fix; the message says what and how."""


class ConfigError(KitError, ValueError):
    """A RunConfig value, a config file or a command-line value that cannot be used."""


class ConfigTypeError(ConfigError, TypeError):
    """A RunConfig field given a value of the wrong type."""


class BackboneError(KitError, RuntimeError):
    """No backbone could be loaded; the message lists what was tried and the fixes."""


class CheckpointError(KitError, RuntimeError):
    """A checkpoint (or feature-cache entry) that does not exist or cannot be read."""


class RunError(KitError, ValueError):
    """A run folder that cannot be used as asked (exists, locked, resumed with other settings)."""


class RunLocked(RunError):
    """Another live process is writing the run folder."""


class RunMissing(RunError, FileNotFoundError):
    """A run folder (or its checkpoint) that should exist does not: nothing to resume or evaluate."""


class DataFileError(KitError, ValueError):
    """A file the kit wrote (a run's JSON, a feature store's manifest) that is empty or damaged."""


class ResourceError(KitError, RuntimeError):
    """Out of memory or another resource; the message lists the remedies."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what was saved and how to continue.

    A ``KeyboardInterrupt`` (not a KitError): ``except Exception`` must never swallow a Ctrl-C.
    """


_WORKER = re.compile(r"^Caught (\w+) in DataLoader worker process \d+\.\nOriginal (Traceback.*)$", re.S)


def unwrap(exc: BaseException) -> BaseException:
    """The exception a DataLoader worker raised, with its own message (else ``exc`` itself).

    Example:
        >>> e = ValueError("Caught ValueError in DataLoader worker process 0.\\nOriginal Traceback "
        ...                "(most recent call last):\\n  File \\"x.py\\", line 1\\nValueError: bad frame")
        >>> str(unwrap(e))
        'bad frame'
    """
    m = _WORKER.match(str(exc))
    if m is None:
        return exc
    name, tb = m.groups()
    # the last line that starts the final exception block: "pkg.mod.Name: message" or "Name: message"
    heads = list(re.finditer(rf"^(?:[\w.]+\.)?{re.escape(name)}(?:: |$)", tb, re.M))
    message = tb[heads[-1].end():].strip() if heads else tb.strip().splitlines()[-1]
    try:
        inner = type(exc)(message)
    except Exception:  # noqa: BLE001 - a class that cannot be rebuilt from a message keeps its wrapper
        return exc
    inner.__cause__ = exc  # the worker's traceback stays reachable (--debug, the run's log)
    return inner


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure the user can fix (print its message) rather than a bug.

    Expected: :class:`KitError`; an ``OSError`` about a named file (missing, a directory, no
    permission); a non-finite loss (``FloatingPointError``); CUDA out of memory.
    """
    exc = unwrap(exc)
    if isinstance(exc, KitError):
        return True
    if isinstance(exc, OSError):
        return isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                                FileExistsError)) or bool(exc.filename)
    return isinstance(exc, FloatingPointError) or type(exc).__name__ == "OutOfMemoryError"


def one_line(exc: BaseException) -> str:
    """The message a user sees for an expected error: the error's own text, no traceback."""
    exc = unwrap(exc)
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


def log_traceback_to_files(exc: BaseException, logger: logging.Logger | None = None) -> None:
    """Writes ``exc``'s traceback into the logger's log files only (a run's ``train.log``), not the console."""
    logger = logger or logging.getLogger("kit")
    files = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
    if not files:
        return
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, f"[error] {type(exc).__name__}: %s",
                               (exc,), (type(exc), exc, exc.__traceback__))
    for h in files:
        h.handle(record)
