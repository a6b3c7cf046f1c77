"""What a person sees in the notebooks: training as one live view, predictions with the run's poses,
tables rounded for reading, run folders found by name or path, the overlay video in a player."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from kit.results.report import RunNotFound, for_people, resolve_run
from kit.results.training_view import TrainingView, epoch_table

pytest_plugins = ["fixtures_run"]
ROOT = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"


def _history(n: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.0 / e, "lr": 1e-3, "val_action_acc": 10.0 + e + 0.123456,
             "val_action_edit": 50.0, "val_action_f1@50": 40.0, "val_stance_acc": 90.0, "val_stance_edit": 80.0,
             "val_stance_f1@50": 70.0, "train_s": 0.5, "val_s": 0.25, "frames_decoded": 0} for e in range(1, n + 1)]


def test_epoch_table_is_compact_and_rounded():
    table = epoch_table(_history(12), last=5, best_epoch=3)
    assert list(table.index) == ["3*", "8", "9", "10", "11", "12"]  # the best epoch and the last five
    assert list(table.columns) == ["loss", "lr", "action acc", "action edit", "action f1@50", "stance acc",
                                   "stance edit", "stance f1@50", "s"]
    assert table.loc["12", "action acc"] == 22.1 and table.loc["12", "s"] == 0.8 and table.loc["3*", "loss"] == 0.667


def test_the_view_draws_progress_table_and_plot_in_place():
    from kit.config import RunConfig

    view = TrainingView(RunConfig(epochs=4, run_name="r"), every_s=0.0, plot_every_s=1e9)
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    view._handle, view._shown = Handle(), True  # as display(..., display_id=True) gives in a kernel
    bar = view.extract_bar(total=10)
    bar.update(4)
    assert "extract: 4/10 frames" in shown[-1]
    bar.close()
    for i, row in enumerate(_history(4)):
        view.step(i, 2 * i + 1, 8)
        view.step(i, 2 * i + 2, 8)
        view.epoch(row, best_epoch=min(i + 1, 2))
    view.finish()
    last = shown[-1]
    assert "epoch 4/4, step 8/8" in last and "value='8' max='8'" in last
    assert "<th>2*</th>" in last and "14.1" in last and "data:image/png;base64," in last
    assert all("<progress" in s for s in shown), "every drawing replaces the whole view"


def test_for_people_rounds_and_blanks_nan():
    df = pd.DataFrame({"label": ["a", "b"], "share_pct": [16.197183, 0.0], "mean_segment_s": [1.23456, math.nan],
                       "frames": [10, 0]})
    out = for_people(df)
    assert out["share_pct"].tolist() == [16.2, 0.0] and out["mean_segment_s"].tolist() == [1.23, ""]
    assert out["frames"].tolist() == [10, 0] and df["share_pct"][0] == 16.197183  # the input is untouched


def test_run_dir_by_name_relative_to_the_notebook_or_absolute(trained_run, tmp_path, monkeypatch):
    out = trained_run.parent
    assert resolve_run(trained_run.name, out) == trained_run.resolve()  # a run name, under output_dir
    assert resolve_run(str(trained_run), "outputs") == trained_run.resolve()  # absolute
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # a kernel runs in the notebook's folder
    rel = os.path.relpath(trained_run, tmp_path / "notebooks")
    assert resolve_run(rel, "outputs") == trained_run.resolve()
    with pytest.raises(RunNotFound) as e:
        resolve_run("no-such-run", out)
    msg = str(e.value)
    assert "\n" not in msg and "run_dir='no-such-run' is not a run folder" in msg and trained_run.name in msg
    assert len(e.value._render_traceback_()) == 1  # the notebook shows one line


def test_video_player_embeds_the_video_with_its_full_path(shared_videos):
    from IPython.display import HTML, Video

    from kit.results.prediction_view import video_player

    player = video_player(shared_videos / "demo.mp4")
    video, caption = player.items
    assert isinstance(video, Video) and video.embed and "controls" in video._repr_html_()
    assert isinstance(caption, HTML) and str((shared_videos / "demo.mp4").resolve()) in caption.data


# --- the notebooks, executed -----------------------------------------------------------------------
def _outputs(nb, source: str) -> list:
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == source]
    assert len(cells) == 1, f"no single cell {source!r}"
    return cells[0].outputs


def test_03_trains_as_one_view_and_05_labels_what_evaluate_scores(demo_root, tmp_path, monkeypatch):
    """03 for 60 epochs keeps the training cell under JupyterLab's 50 outputs with the final metrics in
    its last drawing, and leaves no widget; 05 with its defaults labels the run's test videos with their
    keypoints, as evaluate does."""
    from test_notebooks import papermill

    from kit.results.evaluate import evaluate

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernels: tiny steps, and 2 threads crawl on a busy machine
    out = tmp_path / "outputs"
    nb3 = papermill("03_train", tmp_path / "03.ipynb", ROOT / "notebooks", data_root=demo_root, backbone="tiny",
                    output_dir=out, img_size=32, epochs=60, batch_size=8, max_len=64, run_name="long")  # 1 step/epoch
    run = out / "long"
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 60
    outputs = _outputs(nb3, "result = train_in_notebook(cfg)")
    assert len(outputs) < 50, f"{len(outputs)} outputs: JupyterLab folds those after the 50th"
    views = [o for o in outputs if "text/html" in o.get("data", {}) and "<progress" in o["data"]["text/html"]]
    assert len(views) == 1, "one view, redrawn in place"
    final = views[0]["data"]["text/html"]
    best = int(json.loads((run / "metrics.json").read_text())["epoch"])
    assert "epoch 60/60, step 60/60" in final and f"<th>{best}*</th>" in final and "<th>60</th>" in final
    last = epoch_table(history, best_epoch=best).loc["60"]
    assert f"<td>{last['action acc']}</td>" in final and f"<td>{last['stance acc']}</td>" in final  # final metrics
    assert not any(WIDGET in o.get("data", {}) for c in nb3.cells if c.cell_type == "code" for o in c.outputs)
    assert "[epoch " in (run / "train.log").read_text(), "train.log keeps the epoch lines"

    evaluate(run)  # the test split with best.pt, as 04 by default
    nb5 = papermill("05_predict", tmp_path / "05.ipynb", ROOT, output_dir=out)
    stems = json.loads((run / "splits.json").read_text())["test"]
    for stem in stems:
        ours = pd.read_csv(run / "predict" / f"{stem}.csv", keep_default_na=False)
        scored = pd.read_csv(run / "predictions" / f"{stem}.csv", keep_default_na=False)
        assert (ours["action"] == scored["action_pred"]).all(), f"{stem}: 05 labels differ from evaluate's"
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/html", "")) for c in nb5.cells
                   if c.cell_type == "code" for o in c.outputs)
    assert "trained with keypoints, but" not in text and str(demo_root / "Poses") in text
    assert str((run / "predict" / "summary.csv").resolve()) in text, "every output file with its full path"
