"""The ipywidgets face of :class:`kit.results.annotator.Annotator`: every control calls one API method.

Layout, top to bottom: the status line, the frame, the overview timeline (whole video) and the zoom
timeline (around the cursor), the frame slider with step and boundary buttons, the task chooser and
one button per class (``1 walk``, ``2 run`` ...), the edit buttons, and the suggestions of this video.
An error of an edit (nothing under the cursor, say) is shown in the status line, never raised into
the notebook. Keyboard: click into the *keys* box and type: each character is a shortcut
(:meth:`~kit.results.annotator.Annotator.key`: ``1``-``9`` classes, ``m`` mark, ``,`` / ``.`` one
frame, ``u`` undo ...); ipywidgets has no page-wide key events, so the box must have the focus.
"""
from __future__ import annotations

from kit.results.annotator import _png

__all__ = ["build_view"]


class _View:
    def __init__(self, ann):
        import ipywidgets as w

        self.ann, self.w = ann, w
        L = ann.draft.num_frames
        self.head = w.HTML()
        h, wd = ann.image().shape[:2]
        self.frame_img = w.Image(format="png", layout=w.Layout(width=f"{wd}px", height=f"{h}px"))  # not stretched
        self.overview, self.zoom = (w.Image(format="png", layout=w.Layout(width="800px")) for _ in range(2))
        self.slider = w.IntSlider(value=ann.frame, min=0, max=L - 1, description="frame", continuous_update=False,
                                  layout=w.Layout(width="60%"))
        self.slider.observe(lambda ch: ann.frame != ch["new"] and self._call(ann.goto, ch["new"]), names="value")
        steps = [self._button(text, ann.step, n) for text, n in
                 (("-25", -25), ("-5", -5), ("-1", -1), ("+1", 1), ("+5", 5), ("+25", 25))]
        bounds = [self._button("◀ edge", ann.next_boundary, -1), self._button("edge ▶", ann.next_boundary, 1)]
        self.task = w.ToggleButtons(options=ann.draft.tasks, value=ann.task, description="task")
        self.task.observe(lambda ch: self._call(ann.choose_task, ch["new"]), names="value")
        self.classes = w.HBox()
        edits = [self._button("mark", ann.mark, style="warning"), self._button("split", ann.split),
                 self._button("merge next", ann.merge), self._button("delete", ann.delete),
                 self._button("start here", ann.set_start), self._button("end here", ann.set_end),
                 self._button("move -5", ann.move, -5), self._button("move +5", ann.move, 5),
                 self._button("undo", ann.undo), self._button("redo", ann.redo)]
        self.overwrite = w.Checkbox(value=False, description="replace a changed file", indent=False)
        save = self._button("save", lambda: ann.save(self.overwrite.value), style="success")
        self.suggest = w.Dropdown(options=self._suggest_options(), description="suggested",
                                  layout=w.Layout(width="70%"))
        self.suggest.observe(lambda ch: ch["new"] is not None and self._call(ann.jump, ch["new"]), names="value")
        self.keys = w.Text(value="", description="keys", continuous_update=True, layout=w.Layout(width="420px"),
                           placeholder="click here, then 1-9 m , . < > [ ] s j x u r")
        self.keys.observe(self._typed, names="value")
        self.box = w.VBox([self.head, self.frame_img, self.overview, self.zoom,
                           w.HBox([*steps[:3], self.slider, *steps[3:]]), w.HBox(bounds), self.task, self.classes,
                           w.HBox(edits), w.HBox([save, self.overwrite]), self.keys, self.suggest])
        self.refresh()

    def _suggest_options(self):
        rows = self.ann.suggestions
        return [("", None)] + [(f"{r.start_frame}-{r.end_frame}: {r.reason}", i)
                               for i, r in enumerate(rows.itertuples())]

    def _typed(self, change):
        if change["new"]:
            for ch in change["new"]:
                self._call(self.ann.key, ch)
            self.keys.value = ""  # empty again: the next key press is the next shortcut

    def _button(self, text, fn, *args, style=""):
        b = self.w.Button(description=text, button_style=style, layout=self.w.Layout(width="auto"))
        b.on_click(lambda _: self._call(fn, *args))
        return b

    def _call(self, fn, *args):
        try:
            fn(*args)
        except (ValueError, KeyError, IndexError, FileExistsError, OSError) as e:
            self.ann.message = f"<span style='color:#b00'>{e}</span>"
            self.refresh()

    def refresh(self):
        ann, w = self.ann, self.w
        self.head.value = f"<b>{ann.video_path.name}</b> {ann.status()}<br>{ann.message}"
        self.frame_img.value = _png(ann.image())
        over, zoom = ann.timelines()
        self.overview.value, self.zoom.value = _png(over), _png(zoom)
        if self.slider.value != ann.frame:
            self.slider.value = ann.frame
        names = ann.draft.classes[ann.task]
        if [b.description for b in self.classes.children] != [f"{i + 1} {n}" for i, n in enumerate(names)]:
            buttons = []
            for i, n in enumerate(names):
                rgb = ann._colors[ann.task].get(n, (0.5, 0.5, 0.5))
                b = self._button(f"{i + 1} {n}", ann.label, n)
                b.style.button_color = "#%02x%02x%02x" % tuple(int(255 * c) for c in rgb[:3])
                buttons.append(b)
            self.classes.children = buttons
        if self.task.value != ann.task:
            self.task.value = ann.task


def build_view(ann) -> _View:
    """The widgets of ``ann`` (an :class:`~kit.results.annotator.Annotator`); ``.box`` is what to display."""
    return _View(ann)
