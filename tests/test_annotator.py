"""The labelling widget driven through its Python API (no browser): drafts, edits, undo, saving that
never loses a file, predictions as drafts, and the ipywidgets buttons calling the same methods."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from kit.data import load_records  # noqa: E402
import kit.results.annotator as annotator  # noqa: E402
from kit.results.annotator import Annotator, timeline_image  # noqa: E402
from kit.results.draft import BACKUP_DIR, LabelDraft, Segment  # noqa: E402
from kit.results.labelling import frame_table  # noqa: E402

CLASSES = {"action": ["idle", "walk", "jump"], "stance": ["standing", "airborne"]}


def spans(draft: LabelDraft, task: str = "action") -> list[tuple]:
    return [(s.start, s.end, s.label) for s in draft.segs(task)]


def test_draw_edit_undo_redo_keep_segments_exact():
    d = LabelDraft(100, CLASSES)
    d.draw("action", 10, 29, "walk")
    d.draw("action", 50, 40, "jump")  # either order
    d.draw("action", 25, 44, "idle")  # cuts both neighbours
    assert spans(d) == [(10, 24, "walk"), (25, 44, "idle"), (45, 50, "jump")]
    d.move_boundary("action", 0, 20)  # walk ends at 19, idle starts at 20
    assert spans(d)[:2] == [(10, 19, "walk"), (20, 44, "idle")]
    j = d.split("action", 30)
    assert j == 2 and spans(d)[1:3] == [(20, 29, "idle"), (30, 44, "idle")]
    d.relabel("action", 2, "walk")
    d.merge("action", 0)  # walk 10..19 + idle 20..29 -> walk 10..29
    assert spans(d) == [(10, 29, "walk"), (30, 44, "walk"), (45, 50, "jump")]
    d.delete("action", 1)
    d.move("action", 1, 10)  # jump 45..50 -> 55..60
    d.set_bounds("action", 0, start=5)
    assert spans(d) == [(5, 29, "walk"), (55, 60, "jump")]
    labels = d.labels("action")
    assert (labels[5:30] == "walk").all() and (labels[30:55] == "").all() and labels[0] == ""
    before = spans(d)
    d.move("action", 1, 1000)  # clipped at the video's end, length kept
    assert spans(d)[1] == (94, 99, "jump")
    assert d.undo() and spans(d) == before
    assert d.redo() and spans(d)[1] == (94, 99, "jump")
    while d.undo():
        pass
    assert spans(d) == [] and not d.undo()
    with pytest.raises(ValueError, match="frame must be in 0..99"):
        d.draw("action", 0, 100, "walk")
    d.draw("action", 0, 9, "walk")
    d.draw("action", 20, 29, "idle")
    with pytest.raises(ValueError, match="do not touch"):
        d.move_boundary("action", 0, 15)


def test_saved_csv_loads_through_the_contract_as_drawn(data_copy):
    ann = Annotator.open(data_copy, "demo_000")
    old = (data_copy / "Annotations" / "demo_000.csv").read_bytes()
    L = ann.draft.num_frames
    ann.choose_task("action")
    ann.goto(5)
    ann.mark()
    ann.goto(60)
    ann.label("jump")  # frames 5..60
    ann.goto(100)
    ann.delete()  # the segment under frame 100 becomes unlabeled
    ann.choose_task("stance")
    ann.goto(200)
    ann.mark(180)
    ann.label("airborne")
    drawn = {t: ann.draft.labels(t).tolist() for t in ann.draft.tasks}
    assert drawn["action"][5:61] == ["jump"] * 56 and drawn["action"][100] == ""
    path = ann.save()
    rec = load_records(data_copy, stems=["demo_000"])[0]
    assert rec.labels == drawn and len(rec.labels["action"]) == L
    backups = list((data_copy / BACKUP_DIR).iterdir())
    assert [b.read_bytes() for b in backups] == [old]  # the file it replaced is kept, byte for byte
    ann.undo()  # stance back; save again: a second backup, the first untouched
    ann.save()
    assert len(list((data_copy / BACKUP_DIR).iterdir())) == 2
    assert load_records(data_copy, stems=["demo_000"])[0].labels["stance"][180:201] != ["airborne"] * 21
    assert path == data_copy / "Annotations" / "demo_000.csv"
    assert not list((data_copy / "Annotations").glob(".*tmp"))  # nothing half-written left


def test_never_overwrites_a_file_changed_since_it_was_read(data_copy):
    d = LabelDraft.from_annotation(data_copy, "demo_001")
    target = data_copy / "Annotations" / "demo_001.csv"
    someone = target.read_text().replace("idle", "wave", 1)
    target.write_text(someone)  # another edit after the draft was opened
    d.draw("action", 0, 3, "jump")
    with pytest.raises(FileExistsError, match="nothing written"):
        d.save()
    assert target.read_text() == someone
    d.save(overwrite=True)
    assert [b.read_text() for b in (data_copy / BACKUP_DIR).iterdir()] == [someone]
    assert load_records(data_copy, stems=["demo_001"])[0].labels["action"][:4] == ["jump"] * 4


def test_keypoint_columns_of_the_replaced_file_are_kept(tmp_path):
    path = tmp_path / "Annotations" / "v.csv"
    path.parent.mkdir()
    pd.DataFrame({"frame": range(4), "action": ["a", "a", "b", ""], "kp0_x": [1.5, 2, 3, 4],
                  "kp0_y": [5, 6, 7, 8.25]}).to_csv(path, index=False)
    d = LabelDraft.from_labels({"action": ["a", "a", "b", ""]}, path=path)
    d.draw("action", 2, 3, "c")
    d.save()
    back = pd.read_csv(path, keep_default_na=False)
    assert list(back.columns) == ["frame", "action", "kp0_x", "kp0_y"]
    assert back["action"].tolist() == ["a", "a", "c", "c"] and back["kp0_y"].tolist() == [5, 6, 7, 8.25]


def test_prediction_opens_as_a_shaded_draft_and_saves_as_annotation(data_copy):
    L = len(load_records(data_copy, stems=["demo_000"])[0].labels["action"])
    vocab = {"action": ["idle", "jump", "wave"]}
    p = np.full((L, 3), 0.1, np.float32)
    h = L // 2
    p[:h, 0], p[h:, 0], p[h:, 2] = 0.8, 0.44, 0.46  # idle sure, then wave barely ahead of idle
    pred_dir = data_copy / "pred"
    pred_dir.mkdir()
    frame_table({"action": p}, vocab, fps=25.0).to_csv(pred_dir / "demo_000.csv", index=False)
    ann = Annotator.open(data_copy, "demo_000", prediction=pred_dir)
    segs = ann.draft.segs("action")
    assert [(s.start, s.end, s.label) for s in segs] == [(0, h - 1, "idle"), (h, L - 1, "wave")]
    assert segs[0].prob == pytest.approx(0.8, abs=1e-3) and segs[1].prob == pytest.approx(0.46, abs=1e-3)
    over, _ = ann.timelines(width=200)
    assert over[5, 10].mean() < over[5, 190].mean()  # the unsure segment is paler
    ann.goto(h + 10)
    ann.split()
    ann.label("jump")  # relabel the second part: a person's label, no probability
    assert ann.draft.segs("action")[2] == Segment(h + 10, L - 1, "jump", None)
    with pytest.raises(FileExistsError):  # an annotation exists: a prediction never replaces it silently
        ann.save()
    ann.save(overwrite=True)
    labels = load_records(data_copy, stems=["demo_000"])[0].labels["action"]
    assert labels == ["idle"] * h + ["wave"] * 10 + ["jump"] * (L - h - 10)


def test_frames_on_demand_timelines_and_suggestions(data_copy, monkeypatch):
    rows = pd.DataFrame({"video": ["demo_000", "other"], "start_frame": [40, 0], "end_frame": [89, 9],
                         "reason": ["action: margin 0.1", "x"]})
    ann = Annotator.open(data_copy, "demo_000", img_size=96, suggestions=rows, zoom_frames=50)
    img = ann.image()
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8 and img.std() > 0
    assert len(ann.suggestions) == 1
    assert ann.jump(0) == 40 and "margin" in ann.message
    over, zoom = ann.timelines(width=300)
    assert over.shape == zoom.shape == (2 * 16, 300, 3)
    x = int((40 - 15 + 0.5) * 300 / 50)  # zoom shows frames 15..64: the cursor column is black
    assert (zoom[:, x - 1] == 0).all()
    ann.mark(30)
    ann.goto(35)
    ann.label("jump")
    assert ann.draft.labels("action")[30:36].tolist() == ["jump"] * 6 and ann.marked is None
    with pytest.raises(IndexError):
        ann.jump(1)
    monkeypatch.setattr(annotator, "CACHE_FRAMES", 3)
    for f in (0, 50, 100, 150, 200):  # only the last CACHE_FRAMES decoded frames are kept
        ann.image(f)
    assert list(ann._frames) == [100, 150, 200]


def test_timeline_rejects_a_bad_range():
    d = LabelDraft(10, CLASSES)
    with pytest.raises(ValueError, match="lo <= hi"):
        timeline_image(d, 5, 10)


def test_widget_buttons_call_the_api(data_copy):
    pytest.importorskip("ipywidgets")
    ann = Annotator.open(data_copy, "demo_001", img_size=64)
    box = ann.widget()
    view = ann._view
    buttons = {b.description: b for b in _walk(box) if type(b).__name__ == "Button"}
    view.slider.value = 20
    assert ann.frame == 20
    buttons["mark"].click()
    buttons["+25"].click()
    assert ann.frame == 45
    jump = next(b for d, b in buttons.items() if d.endswith(" jump"))
    jump.click()
    assert ann.draft.labels("action")[20:46].tolist() == ["jump"] * 26
    buttons["undo"].click()
    assert ann.draft.labels("action")[20:46].tolist() != ["jump"] * 26
    buttons["redo"].click()
    ann.goto(ann.draft.num_frames - 1)
    ann.draft.erase("action", ann.draft.num_frames - 3, ann.draft.num_frames - 1)
    buttons["delete"].click()  # nothing under the cursor: an error in the status line, not raised
    assert "no action segment" in view.head.value
    assert view.slider.value == ann.frame and view.frame_img.value[:4] == b"\x89PNG"
    ann.goto(10)
    view.keys.value = "m>2"  # typed into the keys box: mark, 25 frames on, class 2 (jump)
    assert ann.draft.labels("action")[10:36].tolist() == ["jump"] * 26 and view.keys.value == ""
    view.keys.value = "u"
    assert ann.draft.labels("action")[10:36].tolist() != ["jump"] * 26
    view.keys.value = "?"
    assert "no shortcut" in view.head.value


def _walk(w):
    yield w
    for c in getattr(w, "children", ()):
        yield from _walk(c)
