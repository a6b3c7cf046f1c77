"""The kit's log: one ``logging.getLogger("kit")`` whose ``[info]``/``[warn]`` lines show in shells and
notebooks, and a run's ``train.log`` beside it.

Shells: every line on stderr. Notebooks (a Jupyter kernel): ``[info]`` on stdout, warnings on stderr.

Every module logs through ``log = logging.getLogger("kit")``; :func:`setup_logging` attaches a console
handler once (unless the application configured logging itself) and :func:`log_to_file` adds the
run's log file (replacing a previous run's).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger("kit")


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` (or ``sys.stdout``) is now: notebooks and pytest replace them.

    In a shell every line goes to stderr, as logging does (stdout stays for a command's results).
    In a Jupyter kernel ``[info]`` lines go to stdout: JupyterLab paints stderr pink, as errors, and
    an ordinary progress line is not one; warnings and errors stay on stderr.
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout if record.levelno < logging.WARNING and in_kernel() else sys.stderr
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break the program (logging's own rule)
            self.handleError(record)


def in_kernel() -> bool:
    """Whether output goes to a Jupyter kernel's streams (ipykernel replaces ``sys.stdout``)."""
    return type(sys.stdout).__module__.startswith("ipykernel")


def setup_logging() -> logging.Logger:
    """The ``kit`` logger with a console handler (added once) at INFO unless a level was set."""
    if not any(isinstance(h, _ConsoleHandler) for h in log.handlers) and not _configured_elsewhere():
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    return log


def _configured_elsewhere() -> bool:
    """An application that put its own handler on ``kit`` keeps it alone."""
    return any(not isinstance(h, (_ConsoleHandler, logging.FileHandler)) for h in log.handlers)


def log_to_file(path: str | Path) -> None:
    """Everything the ``kit`` logger says also goes to ``path`` (a previous file handler is closed)."""
    setup_logging()
    for h in list(log.handlers):
        if isinstance(h, logging.FileHandler):
            log.removeHandler(h)
            h.close()
    fh = logging.FileHandler(path)
    fh.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(fh)
