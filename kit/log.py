"""The kit's log: one ``logging.getLogger("kit")`` whose ``[info]``/``[warn]`` lines show in shells and
notebooks, and a run's ``train.log`` beside it.

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
    """Writes to whatever ``sys.stderr`` is now (notebooks and pytest replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


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
