"""kit.results.plots and kit.results.input_view: each function returns a Figure with the expected axes,
titles and saved PNG."""
from __future__ import annotations

import json
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import kit.results.input_view as input_view  # noqa: E402
import kit.results.plots as plots  # noqa: E402
from kit.data import load_records, read_frames  # noqa: E402
from kit.temporal.model import COCO17_EDGES  # noqa: E402
from kit.data.windows import uniform_indices  # noqa: E402

pytest_plugins = ["fixtures_run"]
NAMES = ["idle", "jump", "walk"]


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def ribbon_colors(ax) -> list[tuple]:
    """Face colours of the timeline segments drawn on ``ax``, left to right, row by row."""
    bars = [c for c in ax.collections if isinstance(c, PolyCollection)]
    return [tuple(fc) for c in bars for fc in c.get_facecolors()]


@pytest.fixture(scope="module")
def records(trained_run):
    cfg = json.loads((trained_run / "config.json").read_text())
    return load_records(cfg["data_root"])


# --- from the trained run -----------------------------------------------------------------------
def test_training_curves_from_run(trained_run):
    fig = plots.training_curves(trained_run)
    assert isinstance(fig, Figure)
    loss, *tasks = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "validation: action", "validation: stance"]
    assert [l.get_label() for l in loss.get_lines()] == ["train_loss"]
    assert len(loss.get_lines()[0].get_xdata()) == 2  # two epochs
    for ax in tasks:  # one panel per task: a colour per metric, never two tasks in one colour
        assert [l.get_label() for l in ax.get_lines()] == ["acc", "edit", "f1@50"]
        assert len({l.get_color() for l in ax.get_lines()}) == 3
    assert is_png(trained_run / "figures" / "training_curves.png")


def test_training_curves_from_dataframe(tmp_path):
    hist = pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [2.0, 1.5, 1.0], "val_action_acc": [30, 50, 60.0]})
    fig = plots.training_curves(hist, metrics=("acc",), save=tmp_path / "c.png")
    assert [l.get_label() for l in fig.axes[1].get_lines()] == ["acc"]
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [30, 50, 60]
    assert is_png(tmp_path / "c.png")


def test_confusion_matrix_row_normalised(trained_run, tmp_path):
    res = json.loads((trained_run / "eval_val.json").read_text())["action"]
    fig = plots.confusion_matrix(res["confusion"], res["labels"], save=tmp_path / "cm.png")
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the matrix and its colour bar
    assert [t.get_text() for t in ax.get_xticklabels()] == res["labels"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "ground truth")
    shown = np.asarray(ax.images[0].get_array())
    counts = np.array(res["confusion"], float)
    rows = counts.sum(1) > 0
    np.testing.assert_allclose(shown[rows].sum(1), 1.0)
    np.testing.assert_allclose(shown[rows], counts[rows] / counts[rows].sum(1, keepdims=True))
    assert len(ax.texts) == len(res["labels"]) ** 2
    assert is_png(tmp_path / "cm.png")
    raw = plots.confusion_matrix(res["confusion"], res["labels"], normalize=False)
    assert {t.get_text() for t in raw.axes[0].texts} >= {str(int(v)) for v in counts.ravel()}
    with pytest.raises(ValueError, match="must be"):
        plots.confusion_matrix(np.zeros((2, 2)), NAMES)


def test_run_confusion_saves_into_run(trained_run):
    fig = plots.run_confusion(trained_run, "val", "stance")
    assert fig.axes[0].get_title() == "stance (val)"
    assert is_png(trained_run / "figures" / "confusion_val_stance.png")


def test_run_timelines(trained_run):
    from kit.results.evaluate import evaluate

    evaluate(trained_run, split="train")  # 4 videos: enough to check max_videos
    fig = plots.run_timelines(trained_run, "train", "action", max_videos=3)
    assert len(fig.axes) == 3
    stems = json.loads((trained_run / "splits.json").read_text())["train"][:3]
    for ax, stem in zip(fig.axes, stems):
        assert ax.get_title(loc="left").startswith(stem)
        assert [t.get_text() for t in ax.get_yticklabels()] == ["ground truth", "prediction"]
    assert fig.axes[-1].get_xlabel() == "frame"
    assert is_png(trained_run / "figures" / "timelines_train_action.png")
    one = plots.run_timelines(trained_run, "val", "stance")
    assert len(one.axes) == 1
    legend = [t.get_text() for t in one.legends[0].get_texts()]
    vocab = json.loads((trained_run / "labels.json").read_text())["stance"]
    assert legend[: len(vocab)] == vocab
    with pytest.raises(FileNotFoundError, match="run kit.results.evaluate"):
        plots.run_timelines(trained_run, "nope")


def test_label_timelines_and_counts(records, tmp_path):
    fig = plots.label_timelines(records, "action", save=tmp_path / "l.png")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [r.stem for r in records]
    assert is_png(tmp_path / "l.png")
    fig = plots.label_counts(records)
    assert [ax.get_title() for ax in fig.axes] == ["action", "stance"]
    for ax, task in zip(fig.axes, ["action", "stance"]):
        labelled = sum(lab != "" for r in records for lab in r.labels[task])
        assert sum(p.get_height() for p in ax.patches) == labelled
    by_split = plots.label_counts({"train": records[:4], "val": records[4:]})
    legend = by_split.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["train", "val"]
    by_split.canvas.draw()  # the legend sits beside the bars, never over the tallest one
    box = legend.get_window_extent()
    assert not any(box.overlaps(p.get_window_extent()) for ax in by_split.axes for p in ax.patches)
    frame = pd.DataFrame({"action": ["a", "b", "b", ""]})
    assert sum(p.get_height() for p in plots.label_counts(frame).axes[0].patches) == 3


def test_sampled_and_pose_frames_of_a_window(records, tmp_path):
    rec = records[0]
    idx = 10 + uniform_indices(64, 16)  # the 16 frames the backbone reads from a window at 10
    frames = read_frames(rec.video_path, idx, 64)  # (16, 3, 64, 64)
    fig = input_view.sampled_frames(frames, idx, save=tmp_path / "s.png")
    assert len(fig.axes) == 16
    assert [ax.get_title() for ax in fig.axes] == [f"frame {int(i)}" for i in idx]
    assert fig.axes[0].images[0].get_array().shape == (64, 64, 3)
    assert is_png(tmp_path / "s.png")
    hwc = input_view.sampled_frames(frames.permute(0, 2, 3, 1).numpy()[:5], ncols=4)
    assert len(hwc.axes) == 5
    fig = input_view.pose_frames(frames, rec.keypoints[idx.numpy()], idx, video_size=(rec.width, rec.height),
                            run_dir=tmp_path)
    assert len(fig.axes) == 16 and fig.axes[3].get_title() == f"frame {int(idx[3])}"
    assert is_png(tmp_path / "figures" / "pose_frames.png")
    with pytest.raises(ValueError, match="frames must be"):
        input_view.sampled_frames(np.zeros((4, 5, 6), np.uint8))


# --- synthetic inputs ---------------------------------------------------------------------------
def test_pose_frames_skips_missing_joints():
    kp = np.tile(np.random.default_rng(0).uniform(5, 27, (1, 17, 3)), (2, 1, 1))
    kp[..., 2] = 0.9
    kp[0, 0, 2] = 0.0  # frame 0: the nose has score 0
    kp[1, 9, 0] = np.nan  # frame 1: the left wrist is NaN
    fig = input_view.pose_frames(np.zeros((2, 32, 32, 3), np.uint8), kp)
    edges0 = sum(0 not in e for e in COCO17_EDGES)
    edges1 = sum(9 not in e for e in COCO17_EDGES)
    assert len(fig.axes[0].get_lines()) == edges0 + 1  # limbs + one line of joint markers
    assert len(fig.axes[1].get_lines()) == edges1 + 1
    assert len(fig.axes[0].get_lines()[-1].get_xdata()) == 16
    assert fig.axes[0].get_xlim() == (-0.5, 31.5)  # the image's extent, not the skeleton's
    alone = input_view.pose_frames(None, kp[:, :, :2])  # (S, J, 2): no scores, skeleton only
    assert len(alone.axes[0].get_lines()) == len(COCO17_EDGES) + 1


def test_timelines_colours_and_unlabeled(tmp_path):
    gt = [0] * 5 + [-100] * 3 + [2] * 4
    pred = ["idle"] * 6 + ["jump"] * 6
    fig = plots.timelines(gt, pred, NAMES, title="v", save=tmp_path / "t.png")
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and ax.get_title(loc="left") == "v"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ground truth", "prediction"]
    c = plots.class_colors(NAMES)
    grey = tuple(plt_rgba(plots.UNLABELED))
    assert ribbon_colors(ax) == [c["idle"], grey, c["walk"], c["idle"], c["jump"]]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == NAMES + ["(unlabeled)"]
    assert is_png(tmp_path / "t.png")
    gt_only = plots.timelines(["jump"] * 4, None, NAMES)
    assert [t.get_text() for t in gt_only.axes[0].get_yticklabels()] == ["ground truth"]
    assert [t.get_text() for t in gt_only.legends[0].get_texts()] == NAMES


def plt_rgba(color):
    from matplotlib.colors import to_rgba

    return to_rgba(color)


def test_class_colors_distinct_and_stable():
    for n in (3, 12, 30):
        names = [f"c{i}" for i in range(n)]
        colors = plots.class_colors(names)
        assert len(set(colors.values())) == n
        assert plots.class_colors(names) == colors


def test_token_norms_panels_per_time_step(tmp_path):
    from kit.features.backbones import load_backbone

    bb = load_backbone("tiny", img_size=32, num_frames=16)
    tokens = bb.tokens(torch.randint(0, 255, (1, 16, 3, 32, 32), dtype=torch.uint8))  # (1, 8*2*2, 64)
    fig = input_view.token_norms(tokens, grid=bb.token_grid, save=tmp_path / "n.png")
    assert len(fig.axes) == 8 + 1  # one panel per tubelet time step, and the colour bar
    assert [ax.get_title() for ax in fig.axes[:8]] == [f"t'={t}" for t in range(8)]
    expected = tokens[0].norm(dim=-1).reshape(8, 2, 2).numpy()
    np.testing.assert_allclose(np.asarray(fig.axes[3].images[0].get_array()), expected[3], rtol=1e-5)
    assert is_png(tmp_path / "n.png")
    grid = np.random.default_rng(0).normal(size=(3, 4, 5, 6))  # (T', h, w, D)
    assert len(input_view.token_norms(grid).axes) == 3 + 1
    with_cls = np.random.default_rng(0).normal(size=(2, 1 + 2 * 3 * 3, 8))
    assert len(input_view.token_norms(with_cls, grid=(2, 3, 3)).axes) == 2 + 1
    per_frame = np.random.default_rng(0).normal(size=(2, 4, 9, 8))  # 2D backbone (B, F, N, D)
    assert len(input_view.token_norms(per_frame, grid=(4, 3, 3)).axes) == 4 + 1
    with pytest.raises(ValueError, match="expected 2\\*3\\*3 = 18 tokens"):
        input_view.token_norms(np.zeros((1, 20, 8)), grid=(2, 3, 3))
    with pytest.raises(ValueError, match="needs grid"):
        input_view.token_norms(np.zeros((1, 20, 8)))


def test_sampling_positions(tmp_path):
    fig = input_view.sampling_positions(64, save=tmp_path / "p.png")
    ax = fig.axes[0]
    assert ax.get_title() == "16 distinct of 64 frames decoded"
    marks = ax.get_lines()[0].get_xdata()
    assert list(marks) == uniform_indices(64, 16).tolist()
    assert is_png(tmp_path / "p.png")
    custom = input_view.sampling_positions(10, positions=[0, 9])
    assert custom.axes[0].get_title() == "2 distinct of 10 frames decoded"
    short = input_view.sampling_positions(8)  # 16 positions over 8 frames: each frame twice
    assert short.axes[0].get_title() == "8 distinct of 8 frames decoded (16 positions, frames repeated)"
