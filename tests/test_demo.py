"""kit.data.demo: deterministic, valid, and walk_left / walk_right differ only in motion."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pandas as pd
import pytest

import kit.data.demo as demo
from kit.data import load_records, split_records, validate


def frames_of(path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    out = []
    while (f := cap.read())[0]:
        out.append(f[1])
    return np.stack(out)


def test_demo_dataset_follows_the_contract(demo_root):
    assert validate(demo_root).empty
    recs = load_records(demo_root)
    assert len(recs) == 6
    for r in recs:
        assert 150 <= r.num_frames <= 300 and (r.width, r.height, r.fps) == (128, 128, demo.FPS)
        assert set(r.labels["action"]) == set(demo.ACTIONS)  # every action in every video
        assert set(r.labels["stance"]) - {""} == set(demo.STANCES)
        n_segments = 1 + sum(a != b for a, b in zip(r.labels["action"], r.labels["action"][1:]))
        assert n_segments >= len(demo.ACTIONS)
        raw = np.load(r.pose_path)
        assert raw.shape == (r.num_frames, 17, 3) and raw.dtype == np.float32
    assert sum(np.isnan(np.load(r.pose_path)).any() for r in recs) >= 3  # a few missed joints
    sp = split_records(recs)
    assert {k: len(v) for k, v in sp.items()} == {"train": 4, "val": 1, "test": 1}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    t0 = time.perf_counter()
    a = demo.make_demo_data(tmp_path / "a", num_videos=2, seed=5)
    elapsed = time.perf_counter() - t0
    b = demo.make_demo_data(tmp_path / "b", num_videos=2, seed=5)
    c = demo.make_demo_data(tmp_path / "c", num_videos=2, seed=6)
    for rel in ("Annotations/demo_001.csv", "Poses/demo_001.npy", "splits.csv"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "Annotations/demo_001.csv").read_bytes() != (c / "Annotations/demo_001.csv").read_bytes()
    np.testing.assert_array_equal(frames_of(a / "Videos/demo_001.mp4"), frames_of(b / "Videos/demo_001.mp4"))
    assert elapsed < 3.0  # about 0.1 s per video; the 12-video default takes about a second


@pytest.mark.parametrize("t", range(0, 40, 3))
def test_walk_left_and_right_share_every_pose(t):
    left, s1 = demo.body_pose("walk_left", t)
    right, s2 = demo.body_pose("walk_right", t)
    np.testing.assert_array_equal(left, right)
    assert s1 == s2 == "standing"
    assert not np.array_equal(left, demo.body_pose("idle", t)[0]) or t % demo.WALK_PERIOD == 0


def test_walk_direction_shows_in_the_motion_only(demo_root):
    kp = np.load(demo_root / "Poses" / "demo_000.npy")
    actions = pd.read_csv(demo_root / "Annotations" / "demo_000.csv").action.to_numpy()
    centre = np.nanmedian(kp[:, 11:13, 0], axis=1)  # hip centre x per frame
    dx = np.diff(centre)  # keypoints are tracked without the drawing's wrap-around
    for action, sign in (("walk_left", -1), ("walk_right", 1), ("idle", 0), ("wave", 0)):
        moving = dx[(actions[1:] == action) & (actions[:-1] == action)]
        if sign:
            assert np.median(moving) * sign > 0.5, action
        else:
            assert abs(np.median(moving)) < 0.5, action


def test_jump_stances_follow_the_body():
    stances = [demo.body_pose("jump", t)[1] for t in range(demo.JUMP_PERIOD)]
    assert stances == ["crouching"] * 5 + ["airborne"] * 10 + ["crouching"] * 5
    assert demo.body_pose("jump", 9)[0][15, 1] > demo.body_pose("idle", 9)[0][15, 1] + 0.2  # feet off the ground
    with pytest.raises(ValueError, match="unknown demo action"):
        demo.body_pose("dance", 0)


def test_demo_root_generates_once_and_repairs(tmp_path):
    root = demo.demo_root(tmp_path, num_videos=2)
    assert root == tmp_path / "demo_data" and (root / demo.MARKER).is_file()
    stamp = (root / "Videos/demo_000.mp4").stat().st_mtime_ns
    assert demo.demo_root(tmp_path, num_videos=2) == root
    assert (root / "Videos/demo_000.mp4").stat().st_mtime_ns == stamp  # not regenerated
    (root / demo.MARKER).unlink()  # an interrupted generation
    (root / "Poses/demo_001.npy").unlink()
    demo.demo_root(tmp_path, num_videos=2)
    assert (root / "Poses/demo_001.npy").is_file() and len(load_records(root)) == 2


def test_regenerating_with_fewer_videos_leaves_no_stale_files(tmp_path):
    demo.make_demo_data(tmp_path, num_videos=3)
    (tmp_path / "notes.txt").write_text("mine")  # a note added to the kit's folder stays
    demo.make_demo_data(tmp_path, num_videos=2)
    assert sorted(p.name for p in (tmp_path / "Videos").iterdir()) == ["demo_000.mp4", "demo_001.mp4"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert validate(tmp_path).empty


def test_cli_entry_point(tmp_path, capsys):
    assert demo.main_demo(["--out", str(tmp_path / "d"), "--num_videos", "1", "--size", "64"]) == 0
    assert "Wrote 1 demo videos" in capsys.readouterr().out
    r = load_records(tmp_path / "d")[0]
    assert (r.width, r.height) == (64, 64)
