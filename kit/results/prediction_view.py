"""Looking at a labelled video in a notebook: one frame with its predictions, and a slider over frames.

Both read what labelling wrote (the frame table, ``<stem>.csv``) and the video itself, so they work on
any output folder without the model. :func:`prediction_scrubber` needs a live kernel; a headless
(papermill) run shows :func:`prediction_frame` instead.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kit.data.video import probe_video, read_frames
from kit.results.barcode import label_runs
from kit.results.labelling import read_frame_table
from kit.results.plots import UNLABELED, class_colors

__all__ = ["frame_tasks", "prediction_frame", "prediction_scrubber", "video_player"]


def _table(frame_table: pd.DataFrame | str | Path) -> pd.DataFrame:
    return frame_table if isinstance(frame_table, pd.DataFrame) else read_frame_table(frame_table)


def frame_tasks(frame_table: pd.DataFrame) -> list[str]:
    """The tasks of a frame table: the columns that have a ``<task>_prob`` beside them."""
    return [c for c in frame_table.columns if f"{c}_prob" in frame_table.columns]


def prediction_frame(video_path: str | Path, frame_table: pd.DataFrame | str | Path, frame: int,
                     vocab: Mapping[str, Sequence[str]] | None = None, img_size: int = 384) -> Figure:
    """One frame of the video with each task's predicted class and probability, over the ribbons
    of the whole video with a cursor at this frame.

    Args:
        video_path: the labelled video.
        frame_table: its ``<stem>.csv`` (:func:`kit.results.labelling.frame_table`), or the path.
        frame: the frame to show (clipped to the video).
        vocab: ``{task: [class names]}`` for the run's colours; default: the classes in the table, sorted.
        img_size: decoding resolution (the frame is shown at the video's aspect ratio).
    """
    df = _table(frame_table)
    tasks = frame_tasks(df)
    if not tasks:
        raise ValueError(f"the frame table has no <task>/<task>_prob columns (columns: {list(df.columns)})")
    meta = probe_video(video_path)
    if len(df) != meta.num_frames:
        raise ValueError(f"{video_path} has {meta.num_frames} frames but the frame table {len(df)}: "
                         "pass the table written for this video")
    frame = int(np.clip(frame, 0, len(df) - 1))
    img = read_frames(video_path, [frame], img_size)[0].permute(1, 2, 0).numpy()  # (img, img, 3)
    aspect = meta.height / meta.width
    fig, (ax, rib) = plt.subplots(2, 1, figsize=(6, 6 * aspect + 0.35 * len(tasks) + 1.1), layout="constrained",
                                  gridspec_kw=dict(height_ratios=[6 * aspect, 0.35 * len(tasks) + 0.3]))
    plt.close(fig)  # shown once by the notebook, never accumulated in pyplot (as kit.results.plots does)
    ax.imshow(img, extent=(0, meta.width, meta.height, 0))  # stretched back to the video's aspect ratio
    ax.set_axis_off()
    row = df.iloc[frame]
    when = f", {row['time_s']:.2f} s" if "time_s" in df else ""
    ax.set_title(f"{Path(video_path).name}: frame {frame} / {len(df) - 1}{when}", fontsize="small", loc="left")
    handles = []
    for y, task in enumerate(tasks):
        names = list(vocab[task]) if vocab and task in vocab else sorted(df[task].astype(str).unique())
        colors = class_colors(names)
        labels = df[task].astype(str).to_numpy()
        codes = pd.Categorical(labels, categories=list(dict.fromkeys(list(names) + list(labels)))).codes  # (L,)
        starts, ends = label_runs(codes)
        rib.broken_barh(list(zip(starts, ends - starts + 1)), (-y - 0.4, 0.8), linewidth=0, antialiased=False,
                        facecolors=[colors.get(labels[s], UNLABELED) for s in starts])
        label, p = str(row[task]), float(row[f"{task}_prob"])
        handles.append(Patch(color=colors.get(label, UNLABELED), label=f"{task}: {label} ({100 * p:.0f}%)"))
    rib.axvline(frame + 0.5, color="black", lw=2)
    rib.set_yticks([-y for y in range(len(tasks))], tasks, fontsize="small")
    rib.set_xlim(0, len(df))
    rib.set_ylim(-len(tasks) + 0.5, 0.5)
    rib.set_xlabel(f"frame ({meta.fps:g} fps)", fontsize="small")
    rib.spines[["top", "right", "left"]].set_visible(False)
    ax.legend(handles=handles, loc="upper left", fontsize="small", framealpha=0.85)
    return fig


def prediction_scrubber(video_path: str | Path, frame_table: pd.DataFrame | str | Path,
                        vocab: Mapping[str, Sequence[str]] | None = None, frame: int = 0, img_size: int = 384):
    """An ipywidgets slider over the frames showing :func:`prediction_frame`, with buttons that jump to
    the previous / next change of the first task's prediction. Display it in a live kernel."""
    import ipywidgets as widgets
    from IPython.display import display

    df = _table(frame_table)
    tasks = frame_tasks(df)
    starts, _ = label_runs(pd.factorize(df[tasks[0]])[0]) if tasks else (np.zeros(1, np.int64), None)
    slider = widgets.IntSlider(value=frame, min=0, max=len(df) - 1, description="frame", continuous_update=False,
                               layout=widgets.Layout(width="80%"))
    prev_b, next_b = widgets.Button(description="◀ change"), widgets.Button(description="change ▶")
    out = widgets.Output()

    def show(_=None):
        out.clear_output(wait=True)
        with out:
            display(prediction_frame(video_path, df, slider.value, vocab, img_size))

    def jump(step: int):
        def go(_):
            later, earlier = starts[starts > slider.value], starts[starts < slider.value]
            target = (later[:1] if step > 0 else earlier[-1:])
            if len(target):
                slider.value = int(target[0])
        return go

    prev_b.on_click(jump(-1))
    next_b.on_click(jump(+1))
    slider.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([prev_b, slider, next_b]), out])


def video_player(path: str | Path, max_embed_mb: float = 25.0):
    """A video player for a notebook cell (``IPython.display.Video``), with the file's full path.

    Up to ``max_embed_mb`` the video is embedded, so the saved notebook (and papermill's executed
    copy) plays it anywhere; a larger one is linked by its path relative to the current folder
    (JupyterLab serves files under the folder it was started in).
    """
    from IPython.display import HTML, Video

    p = Path(path).resolve()
    size_mb = p.stat().st_size / 2 ** 20
    mime = "video/webm" if p.suffix.lower() == ".webm" else "video/mp4"
    if size_mb <= max_embed_mb:
        player = Video(str(p), embed=True, mimetype=mime, html_attributes="controls loop style='max-width:100%'")
    else:
        player = Video(os.path.relpath(p), html_attributes="controls style='max-width:100%'")
    caption = HTML(f"<div style='font-family:monospace'>{html.escape(str(p))} ({size_mb:.1f} MB)</div>")
    return _Both(player, caption)


class _Both:
    """Two displayables shown as one (the player, then its path)."""

    def __init__(self, *items):
        self.items = items

    def _ipython_display_(self):
        from IPython.display import display

        display(*self.items)
