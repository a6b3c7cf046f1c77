"""Training in a notebook as one live view: ``result = train_in_notebook(cfg)``.

``kit.temporal.train.fit`` in a shell prints a progress bar per epoch and one ``[epoch N/E]`` line.
In a notebook that is one output per line: JupyterLab shows a cell's first 50 outputs and folds
the rest, so from about epoch 25 on the screen stops moving; and every per-epoch tqdm bar is a
widget, which a notebook saved without its widget state shows as "model not found". Here the run
is **one** output instead, an HTML block that is redrawn in place (IPython's ``display_id``):

- one progress bar for the whole run (optimizer steps; the feature extraction first, when
  videos need it), with elapsed time and an estimate of what is left;
- a compact table of the last epochs and the best one (loss, validation acc / edit / F1@50 per task);
- a small plot of the loss and the validation action accuracy, redrawn every few seconds.

No widget: the last drawing stays in the saved notebook and in papermill's executed copy (nbclient
applies ``update_display_data`` to the output it names), so the executed copy holds the final
table. The ``[epoch N/E]`` lines still go to the run's ``train.log``; only the console copy is held
back while the view shows them.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import time

import pandas as pd

from kit.config import RunConfig
from kit.log import setup_logging
from kit.temporal.runs import new_run_name
from kit.temporal.train import FitResult, fit

__all__ = ["TrainingView", "epoch_table", "train_in_notebook"]

METRICS = ("acc", "edit", "f1@50")  # the validation metrics the view shows per task
SHOWN_EPOCHS = 5  # the last epochs in the table (plus the best one)


def epoch_table(history: pd.DataFrame | list[dict], last: int = 0, best_epoch: int = 0) -> pd.DataFrame:
    """A ``history.csv`` table for people: epoch, loss, learning rate, seconds and per task the
    validation acc / edit / F1@50 (percent, one decimal); ``last`` keeps the last rows only (the
    ``best_epoch`` row is kept too, marked ``*``)."""
    df = pd.DataFrame(history)
    if df.empty:
        return pd.DataFrame()
    tasks = [c[4:-4] for c in df.columns if c.startswith("val_") and c.endswith("_acc")]
    out = pd.DataFrame({"epoch": df["epoch"].astype(int)})
    out["loss"] = df["train_loss"].round(3)
    if "lr" in df:
        out["lr"] = df["lr"].map(lambda v: f"{v:.0e}")
    for task in tasks:
        for m in METRICS:
            col = f"val_{task}_{m}"
            if col in df:
                out[f"{task} {m}"] = df[col].round(1)
    if "train_s" in df:
        out["s"] = (df["train_s"] + df.get("val_s", 0)).round(1)
    if last and len(out) > last:
        keep = out["epoch"].isin(list(out["epoch"].iloc[-last:]) + [best_epoch])
        out = out[keep]
    out.index = [f"{e}*" if e == best_epoch else str(e) for e in out["epoch"]]
    return out.drop(columns="epoch").rename_axis("epoch")


class _Bar:
    """The extraction's progress, as the view's bar (``update(n)``, ``close()``: what extract calls)."""

    def __init__(self, view: "TrainingView", total: int, desc: str):
        self.view, self.total, self.n, self.desc = view, total, 0, desc
        self.t0 = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        self.view._phase = (self.desc, self.n, self.total, self.t0, "frames")
        self.view._draw()

    def close(self) -> None:
        self.view._phase = None
        self.view._draw(force=True)


class TrainingView:
    """A monitor for :func:`kit.temporal.train.fit` that draws the run as one HTML output, in place.

    Args:
        cfg: the run's config (epochs, and the name shown).
        every_s: the least seconds between two redraws (the last one is always drawn).
        plot: draw the loss / accuracy plot beside the table.
        plot_every_s: the least seconds between two drawings of the plot (it costs more).
    """

    def __init__(self, cfg: RunConfig, every_s: float = 1.0, plot: bool = True, plot_every_s: float = 5.0):
        self.cfg, self.every_s, self.plot, self.plot_every_s = cfg, every_s, plot, plot_every_s
        self.rows: list[dict] = []
        self.best_epoch = 0
        self.step_done, self.total_steps, self.epoch_now = 0, 0, 0
        self._phase = None  # (desc, done, total, t0, unit) while extracting
        self._t0 = self._t_steps = time.perf_counter()
        self._steps0 = None
        self._last = 0.0
        self._last_plot = 0.0
        self._plot_html = ""
        self._handle = None
        self._shown = False
        self._error = ""

    # --- what fit calls ------------------------------------------------------------------------
    def extract_bar(self, total: int, desc: str = "extract") -> _Bar:
        return _Bar(self, total, desc)

    def step(self, epoch: int, step: int, total_steps: int) -> None:
        if self._steps0 is None:  # the first step (after a resume: not 0)
            self._steps0, self._t_steps = max(step - 1, 0), time.perf_counter()
        self.epoch_now, self.step_done, self.total_steps = epoch + 1, step, total_steps
        self._draw()

    def epoch(self, row: dict, best_epoch: int) -> None:
        self.rows.append(dict(row))
        self.best_epoch = best_epoch
        self._draw(force=len(self.rows) == self.cfg.epochs)

    # --- drawing ---------------------------------------------------------------------------------
    def show(self) -> None:
        """Displays the view (an empty bar) and keeps its handle for the redraws."""
        from IPython.display import HTML, display

        self._handle = display(HTML(self.html()), display_id=True)  # None outside IPython
        self._shown = True

    def finish(self, error: BaseException | None = None) -> None:
        """The last drawing: the final table and plot (and the error, if the run stopped)."""
        if not self._shown and not self.rows:
            return  # stopped before anything was shown: the error says it all
        self._phase = None
        self._error = f"{type(error).__name__}: {error}" if error is not None else ""
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self._shown:  # shown at the first news: below the run's first log lines
            self.show()
        elif self._handle is None or (not force and now - self._last < self.every_s):
            return  # no display to update (outside IPython), or drawn a moment ago
        if self._handle is None:
            return
        self._last = now
        from IPython.display import HTML

        self._handle.update(HTML(self.html(redraw_plot=force or now - self._last_plot > self.plot_every_s)))

    def html(self, redraw_plot: bool = True) -> str:
        """The view as HTML: the bar, the table of epochs, the plot."""
        parts = [f"<div style='font-family: monospace'><b>training {html.escape(self.cfg.run_name)}</b>"]
        parts.append(self._bar_html())
        if self._error:
            parts.append(f"<div style='color:#b00'>stopped: {html.escape(self._error)}</div>")
        table = epoch_table(self.rows, last=SHOWN_EPOCHS, best_epoch=self.best_epoch)
        body = table.to_html(border=0) if not table.empty else "<i>no epoch finished yet</i>"
        if self.plot and len(self.rows) >= 2 and redraw_plot:
            self._plot_html = self._plot()
            self._last_plot = time.perf_counter()
        note = (f"<div>* best epoch {self.best_epoch} (best.pt); all epochs: history.csv</div>"
                if self.best_epoch else "")
        parts.append(f"<div style='display:flex; gap:1.5em; align-items:flex-start'>"
                     f"<div style='white-space:nowrap'>{body}{note}</div>"
                     f"{self._plot_html if self.plot else ''}</div></div>")
        return "".join(parts)

    def _bar_html(self) -> str:
        if self._phase is not None:
            desc, done, total, t0, unit = self._phase
            elapsed = time.perf_counter() - t0
            text = f"{desc}: {done}/{total} {unit}"
        else:
            done, total = self.step_done - (self._steps0 or 0), self.total_steps - (self._steps0 or 0)
            elapsed = time.perf_counter() - self._t_steps
            text = (f"epoch {self.epoch_now}/{self.cfg.epochs}, step {self.step_done}/{self.total_steps}"
                    if self.total_steps else "starting (data, features, model)")
        left = elapsed / done * (total - done) if done and total > done else 0.0
        timing = f" · {_clock(elapsed)} elapsed" + (f" · ~{_clock(left)} left" if left else "")
        value = f"value='{done}' max='{max(total, 1)}'" if total else ""
        return (f"<div><progress {value} style='width:24em; vertical-align:middle'></progress> "
                f"{html.escape(text)}{timing if total else ''}</div>")

    def _plot(self) -> str:
        from matplotlib.figure import Figure  # no pyplot: the figure is not shown twice
        from matplotlib.ticker import MaxNLocator

        df = pd.DataFrame(self.rows)
        fig = Figure(figsize=(4.2, 2.7), layout="constrained")
        ax = fig.subplots()
        ax.plot(df["epoch"], df["train_loss"], color="tab:blue", label="train loss")
        ax.set(xlabel="epoch", ylabel="loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize="small")
        acc = [c for c in df.columns if c.startswith("val_") and c.endswith("_acc")]
        if acc:
            ax2 = ax.twinx()
            for col, color in zip(acc, ("tab:orange", "tab:green", "tab:red", "tab:purple")):
                ax2.plot(df["epoch"], df[col], color=color, label=f"val {col[4:-4]} acc %")
            ax2.set_ylim(0, 100)
            ax2.tick_params(labelsize="small")
            lines = ax.get_lines() + ax2.get_lines()  # one legend above the axes, off the curves
            fig.legend(lines, [line.get_label() for line in lines], fontsize="x-small", ncols=2,
                       loc="outside upper center", frameon=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _HideEpochLines(logging.Filter):
    """Keeps ``[epoch N/E]`` lines off the console (the view shows them; train.log keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("[epoch ")


def train_in_notebook(cfg: RunConfig, every_s: float = 1.0, plot: bool = True) -> FitResult:
    """``kit.temporal.train.fit(cfg)`` shown as one live view (the module docstring).

    The other log lines (run folder, extraction, warnings) print as usual; the view appears below
    the first of them, when the extraction or the first epoch starts.
    """
    log = setup_logging()
    if not cfg.run_name:  # named here, as fit would name it, so the view can say which run it shows
        cfg = cfg.replace(run_name=new_run_name(cfg.output_dir))
    hide = _HideEpochLines()
    consoles = [h for h in log.handlers if not isinstance(h, logging.FileHandler)]
    view = TrainingView(cfg, every_s=every_s, plot=plot)  # shows itself when the extraction or training starts
    for h in consoles:
        h.addFilter(hide)
    try:
        result = fit(cfg, monitor=view)
    except BaseException as e:
        view.finish(e)
        raise
    finally:
        for h in consoles:
            h.removeFilter(hide)
    view.finish()
    return result

