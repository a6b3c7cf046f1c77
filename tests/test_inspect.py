"""kit.results.inspect and kit.results.profiling: the data tables, frame helpers, widgets and backbone
measurements of notebooks 01/02."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import kit.results.inspect as ki  # noqa: E402
import kit.results.profiling as kp  # noqa: E402
from kit.features.backbones import load_backbone  # noqa: E402
from kit.config import RunConfig, project_root  # noqa: E402
from kit.data import load_records, read_frames, split_records  # noqa: E402
from kit.data.windows import uniform_indices  # noqa: E402


@pytest.fixture(scope="module")
def records(demo_root):
    return load_records(demo_root)


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny", img_size=32)


# --- paths -----------------------------------------------------------------------------------
def test_project_path_keeps_empty_and_anchors_relative_paths(tmp_path):
    assert ki.project_path("") == ""
    assert ki.project_path("data/mine") == str(project_root() / "data" / "mine")
    assert ki.project_path(tmp_path) == str(tmp_path)


def test_dataset_root_says_which_data(tmp_path, demo_root, capsys):
    assert ki.dataset_root(demo_root) == demo_root
    assert f"[info] Data: {demo_root}" in capsys.readouterr().out
    root = ki.dataset_root("", tmp_path / "outs")
    assert root == tmp_path / "outs" / "demo_data" and (root / "splits.csv").is_file()
    assert "DEMO data" in capsys.readouterr().out


# --- tables ----------------------------------------------------------------------------------
def test_dataset_summary_counts_per_video_and_total(records):
    splits = split_records(records)
    df = ki.dataset_summary(records, splits)
    assert list(df.index) == [r.stem for r in records] + ["total"]
    assert df.loc["total", "frames"] == sum(r.num_frames for r in records)
    assert df.loc["total", "split"] == f"{len(records)} videos"
    r = records[1]  # odd demo videos: stance unlabeled on their first 4 frames
    assert df.loc[r.stem, "split"] in ("train", "val", "test")
    assert df.loc[r.stem, "stance unlabeled"] == 4 and df.loc[records[0].stem, "stance unlabeled"] == 0
    changes = sum(a != b for a, b in zip(r.labels["action"], r.labels["action"][1:]))
    assert df.loc[r.stem, "action segments"] == changes + 1
    assert df.loc[r.stem, "resolution"] == "128x128" and df.loc[r.stem, "joints"] == 17


def test_class_counts_add_up(records):
    splits = split_records(records)
    df = ki.class_counts(records, splits)
    for task in ("action", "stance"):
        labelled = sum(bool(v) for r in records for v in r.labels[task])
        assert df.loc[task, "frames"].sum() == labelled
        assert df.loc[task, "share %"].sum() == pytest.approx(100, abs=0.2)
    assert (df[["train", "val", "test"]].sum(axis=1) == df["frames"]).all()
    assert set(df.loc["action"].index) == {"idle", "jump", "walk_left", "walk_right", "wave"}


# --- frames and poses ------------------------------------------------------------------------
def test_window_frames_are_the_uniformly_sampled_frames(records):
    r = records[0]
    frames, idx = ki.window_frames(r, 64, start=10, img_size=32)
    assert frames.shape == (16, 3, 32, 32) and frames.dtype == torch.uint8
    assert idx.tolist() == (10 + uniform_indices(64)).tolist()
    assert torch.equal(frames, read_frames(r.video_path, idx, 32))
    all_frames, all_idx = ki.window_frames(r, 20, img_size=32, positions="all")
    assert all_frames.shape[0] == 20 and all_idx.tolist() == list(range(20))


def test_window_frames_pad_with_the_last_frame_like_training(records):
    r = records[0]
    _, idx = ki.window_frames(r, 64, start=r.num_frames - 10, img_size=32)
    assert idx.max() == r.num_frames - 1 and (idx == r.num_frames - 1).sum() > 1
    with pytest.raises(ValueError, match="window start"):
        ki.window_frames(r, 64, start=r.num_frames)
    with pytest.raises(ValueError, match="positions must be"):
        ki.window_frames(r, 64, positions="every")


def test_keypoints_at(records):
    r = records[0]
    assert np.array_equal(ki.keypoints_at(r, [3, 5]), r.keypoints[[3, 5]])
    bare = type(r)(**{**r.__dict__, "keypoints": None})
    assert not ki.keypoints_at(bare, torch.tensor([1, 2, 3])).any()


def test_frame_view_titles_the_frame_with_its_labels(records):
    r = records[1]
    fig = ki.frame_view(r, 2, img_size=32)
    assert isinstance(fig, Figure)
    title = fig.axes[0].get_title()
    assert f"frame 2/{r.num_frames - 1}" in title and f"action={r.labels['action'][2]}" in title
    assert "stance=(unlabeled)" in title  # odd demo videos: frames 0-3 have no stance


def test_frame_scrubber_redraws_on_the_slider(records, monkeypatch):
    import ipywidgets

    shown = []
    monkeypatch.setattr(ki, "frame_view", lambda record, frame, img_size: shown.append(frame) or Figure())
    box = ki.frame_scrubber(records[0], img_size=32, frame=5)
    slider = box.children[0]
    assert isinstance(slider, ipywidgets.IntSlider) and slider.max == records[0].num_frames - 1
    slider.value = 42
    assert shown == [5, 42]


# --- the backbone ------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg, words", [
    (RunConfig(), ["tiny", "no data", "RANDOM"]),
    (RunConfig(backbone="tiny", data_root="/d"), ["tiny", "as asked", "RANDOM"]),
    (RunConfig(data_root="/d"), ["auto", "your data", "VideoMAE MCG-NJU/videomae-base", "timm"]),
    (RunConfig(data_root="/d", backbone="videomae", backbone_path="/ckpt"), ["videomae", "/ckpt", "no fallback"]),
    (RunConfig(data_root="/d", backbone="vit2d"), ["vit2d", "timm"]),
])
def test_backbone_choice_explains_the_default(cfg, words):
    text = ki.backbone_choice(cfg)
    for w in words:
        assert w in text


def test_shape_walkthrough_3d(tiny):
    video = torch.randint(0, 256, (1, 70, 3, 32, 32), dtype=torch.uint8)
    df = ki.shape_walkthrough(tiny, video).set_index("step")["shape"]
    assert df["frames"] == "(1, 70, 3, 32, 32)" and df["one clip"] == "(1, 16, 3, 32, 32)"
    assert df["pixel_values"] == "(1, 16, 3, 32, 32)"
    assert df["token grid"] == "(1, 8, 2, 2, 64)"  # 8 tubelet steps x 2 x 2 patches
    C = -(-70 // 16)  # clips of 16 frames tile the window
    assert (df["clip, window: embed"], df["tokens, window: embed"]) == ("(1, 1, 64)", f"(1, {8 * C}, 64)")
    assert df["tokens, window: frames decoded"] == f"(1, {16 * C}, 3, 32, 32)"
    assert df["clip, whole video: clip vectors"] == f"({C}, 1, 64)" and df["tokens, whole video: clip vectors"] == \
        f"({C}, 8, 64)"
    for mode in ("clip", "tokens"):
        assert df[f"{mode}, window: per-frame"] == "(1, 70, 64)" and df[f"{mode}, whole video: per-frame"] == "(70, 64)"
    assert tiny.mode == "tokens"  # the walkthrough does not change the backbone it was given
    with pytest.raises(ValueError, match="B, T, 3, H, W"):
        ki.shape_walkthrough(tiny, video[0])


def test_shape_walkthrough_2d(tmp_path):
    from _tiny_models import TINY_IMG, save_tiny_vit

    file = tmp_path / "model.safetensors"
    save_tiny_vit(file)
    bb = load_backbone("vit2d", model_id="vit_tiny_patch16_224", path=file, img_size=TINY_IMG)
    df = ki.shape_walkthrough(bb, torch.zeros(1, 20, 3, 32, 32, dtype=torch.uint8), modes=("tokens",))
    df = df.set_index("step")["shape"]
    assert df["token grid"] == "(1, 16, 2, 2, 192)"  # every frame alone: 16 time steps
    assert df["tokens, window: embed"] == "(1, 32, 192)" and df["tokens, window: per-frame"] == "(1, 20, 192)"


def test_sampling_slider_draws_the_backbones_positions(tiny, monkeypatch):
    import kit.results.input_view

    drawn = []
    monkeypatch.setattr(kit.results.input_view, "sampling_positions",
                        lambda T, positions: drawn.append((T, positions.tolist())) or Figure())
    box = ki.sampling_slider(tiny, T=100, max_T=300)
    slider = box.children[0]
    assert (slider.min, slider.max, slider.value) == (16, 300, 100)
    slider.value = 240
    assert drawn == [(100, tiny.sample_positions(100).tolist()), (240, tiny.sample_positions(240).tolist())]


def test_time_forward_reports_time_and_memory_per_clip(tiny):
    tiled = load_backbone("tiny", img_size=32, mode="tokens", frame_step=2)
    tiled(torch.zeros(2, 96, 3, 32, 32, dtype=torch.uint8))  # warm: memory kept from it must not hide the cost
    res = kp.time_forward(tiled, torch.zeros(2, 96, 3, 32, 32, dtype=torch.uint8), repeats=2, device="cpu")
    assert res["clips_per_call"] == 2 * tiled.num_clips(96) == 6  # clips of 32 frames tile 96
    assert res["seconds_per_call"] > 0
    assert res["seconds_per_clip"] == pytest.approx(res["seconds_per_call"] / 6, rel=0.01)
    assert res["device"] == "cpu" and "RSS" in res["memory_method"]
    assert res["peak_memory_mb"] > 0 and res["process_peak_mb"] > res["peak_memory_mb"]
    with pytest.raises(ValueError, match="B, T, 3, H, W"):
        kp.time_forward(tiny, torch.zeros(3, 32, 32))


def test_peak_rss_sees_a_large_allocation():
    with kp._PeakRSS() as rss:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
        del block
    assert rss.rise > 150 * 2**20
