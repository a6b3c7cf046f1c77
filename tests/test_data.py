"""kit.data / kit.data.video: the data contract, frame-exact decoding, bad input, windows."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

import kit.data.video as video
from kit.data import (DECODE_STATS, IGNORE_INDEX, DataError, build_vocab,
                      load_records, probe_video, read_frames, reset_decode_stats, split_records,
                      tasks_of, validate)
from kit.data.labels import UNSEEN, unseen_labels
from kit.data.windows import Window, WindowDataset, collate, eval_windows, train_windows, uniform_indices


def sequential(path: Path, size: int) -> np.ndarray:
    """Every frame by plain ``cap.read()`` from the start, RGB ``(L, size, size, 3)``: the reference."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(video._to_rgb(bgr, size))
    cap.release()
    return np.stack(out)


def as_hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).numpy()  # (S, 3, H, W) -> (S, H, W, 3)


def index_sets(n: int, seed: int = 0) -> list[list[int]]:
    """Sorted, unsorted, duplicated, window-sampled, first/last frame requests for an n-frame video."""
    rng = np.random.default_rng(seed)
    T = min(n, 180)
    start = (n - T) // 2
    return [(start + uniform_indices(T)).tolist(), sorted(rng.choice(n, min(n, 10), replace=False).tolist()),
            rng.integers(0, n, 12).tolist(), [n - 1, 0, n - 1, n // 2, n // 2], [n - 1], [0]]


def snapshot(root: Path) -> dict:
    return {p: hashlib.sha1(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


# --- decoding --------------------------------------------------------------------------------------
def test_read_frames_exact_on_demo_videos(demo_root):
    for path in sorted((demo_root / "Videos").glob("*.mp4"))[:3]:
        ref = sequential(path, 96)
        assert probe_video(path).num_frames == len(ref)
        for idx in index_sets(len(ref)):
            got = read_frames(path, idx, 96)
            assert got.dtype == torch.uint8 and got.shape == (len(idx), 3, 96, 96)
            np.testing.assert_array_equal(as_hwc(got), ref[idx], err_msg=f"{path.name} {idx}")


@pytest.mark.parametrize("name", ["demo.mp4", "demo_skeleton.mp4", "rawvideo_part_0.mp4", "test.avi", "test.mp4"])
def test_read_frames_exact_on_real_videos(shared_videos, name):
    path = shared_videos / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    ref = sequential(path, 64)
    meta = probe_video(path)
    assert meta.num_frames == len(ref)  # header count checked against sequential decoding
    # One unsorted request with duplicates, the window's 16 positions, the first and the last frame
    # (each read of a 1080p file costs a second on 2 cores, so one read covers every case).
    idx = sum(index_sets(len(ref), seed=len(name))[1:], [])
    rng = np.random.default_rng(0)
    idx = rng.permutation(idx + index_sets(len(ref))[0]).tolist()
    np.testing.assert_array_equal(as_hwc(read_frames(path, idx, 64)), ref[idx], err_msg=f"{name} {idx}")


def test_sampled_window_decodes_only_what_it_returns(demo_root):
    path = demo_root / "Videos" / "demo_000.mp4"
    video.seek_is_exact(path)  # the once-per-file check is not part of a window's cost
    for start, seeks in ((0, 0), (60, 1)):
        reset_decode_stats()
        x = read_frames(path, start + uniform_indices(180), 64)
        assert x.shape == (16, 3, 64, 64)
        assert DECODE_STATS["frames_decoded"] == 16 and DECODE_STATS["frames_returned"] == 16
        assert DECODE_STATS["frames_grabbed"] == 180  # seek point to the last frame: codecs cannot skip
        assert DECODE_STATS["seeks"] == seeks and DECODE_STATS["probe_frames"] == 0
    reset_decode_stats()
    read_frames(path, [5, 5, 9], 64)
    assert (DECODE_STATS["frames_decoded"], DECODE_STATS["frames_returned"]) == (2, 3)


_VideoCapture = cv2.VideoCapture


class _OffByOneSeek:
    """A VideoCapture whose seeks land one frame late, like containers with broken timestamps."""

    def __init__(self, path):
        self._cap = _VideoCapture(path)

    def set(self, prop, value):
        if prop == cv2.CAP_PROP_POS_FRAMES and value > 0:
            value += 1
        return self._cap.set(prop, value)

    def __getattr__(self, name):
        return getattr(self._cap, name)


def test_inexact_seek_detected_and_decoded_from_the_start(demo_root, monkeypatch):
    path = demo_root / "Videos" / "demo_001.mp4"
    ref = sequential(path, 64)
    monkeypatch.setattr(video, "_META", {})
    monkeypatch.setattr(video, "_SEEK_EXACT", {})
    monkeypatch.setattr(video.cv2, "VideoCapture", _OffByOneSeek)
    assert not video.seek_is_exact(path)
    reset_decode_stats()
    idx = (100 + uniform_indices(64)).tolist()
    np.testing.assert_array_equal(as_hwc(read_frames(path, idx, 64)), ref[idx])
    assert DECODE_STATS["seeks"] == 0 and DECODE_STATS["frames_grabbed"] == 164


def test_seek_exact_on_demo(demo_root):
    assert video.seek_is_exact(demo_root / "Videos" / "demo_002.mp4")


class _LyingHeader(_OffByOneSeek):
    def get(self, prop):
        return self._cap.get(prop) + 10 if prop == cv2.CAP_PROP_FRAME_COUNT else self._cap.get(prop)


def test_frame_count_falls_back_to_sequential_when_header_lies(demo_root, monkeypatch):
    path = demo_root / "Videos" / "demo_003.mp4"
    n = len(pd.read_csv(demo_root / "Annotations" / "demo_003.csv"))
    monkeypatch.setattr(video, "_META", {})
    monkeypatch.setattr(video.cv2, "VideoCapture", _LyingHeader)
    meta = probe_video(path)
    assert (meta.num_frames, meta.header_frames) == (n, n + 10)


def test_metadata_cache_follows_the_file(demo_root, tmp_path):
    dst = tmp_path / "v.mp4"
    shutil.copy(demo_root / "Videos" / "demo_000.mp4", dst)
    n0 = probe_video(dst).num_frames
    shutil.copy(demo_root / "Videos" / "demo_001.mp4", dst)
    os.utime(dst, ns=(1, 1))  # a different mtime even on coarse file systems
    assert probe_video(dst).num_frames != n0 == probe_video(demo_root / "Videos" / "demo_000.mp4").num_frames


def test_read_frames_out_of_range(demo_root):
    path = demo_root / "Videos" / "demo_000.mp4"
    n = probe_video(path).num_frames
    with pytest.raises(IndexError, match="demo_000.mp4"):
        read_frames(path, [0, n], 32)
    assert read_frames(path, [], 32).shape == (0, 3, 32, 32)


# --- records, splits, vocab ------------------------------------------------------------------------
def test_load_demo_records(demo_root):
    recs = load_records(demo_root)
    assert [r.stem for r in recs] == [f"demo_{i:03d}" for i in range(6)]
    r = recs[1]
    df = pd.read_csv(demo_root / "Annotations" / "demo_001.csv", keep_default_na=False)
    assert r.num_frames == len(df) and (r.width, r.height, r.fps) == (128, 128, 25.0)
    assert list(r.labels) == ["action", "stance"] and r.labels["action"] == df.action.tolist()
    assert r.labels["stance"][:4] == [""] * 4  # unlabeled frames of the demo
    raw = np.load(demo_root / "Poses" / "demo_001.npy")
    assert r.keypoints.shape == raw.shape == (r.num_frames, 17, 3)
    nan = np.isnan(raw).any(-1)
    assert nan.any() and np.isfinite(r.keypoints).all() and (r.keypoints[nan] == 0).all()
    assert tasks_of(recs) == ["action", "stance"]


def test_splits_file_and_vocab(demo_root):
    recs = load_records(demo_root)
    sp = split_records(recs)  # finds <root>/splits.csv
    assert [len(sp[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    vocab = build_vocab(sp["train"], tasks_of(recs))
    assert vocab == {"action": ["idle", "jump", "walk_left", "walk_right", "wave"],
                     "stance": ["airborne", "crouching", "standing"]}


@pytest.mark.parametrize("n", [1, 2, 3, 6, 12])
def test_seeded_split(data_copy, n):
    recs = load_records(data_copy) * 6  # stems repeat; identity is what counts
    recs = [r.__class__(**{**r.__dict__, "stem": f"v{i}"}) for i, r in enumerate(recs[:n])]
    sp = split_records(recs, val_fraction=0.2, test_fraction=0.1, seed=3)
    stems = [[r.stem for r in sp[s]] for s in ("train", "val", "test")]
    assert sorted(sum(stems, [])) == sorted(r.stem for r in recs)  # every video in exactly one split
    assert stems[0] and (n < 2 or stems[1])
    assert sp == split_records(recs, val_fraction=0.2, test_fraction=0.1, seed=3)


def test_vocab_only_from_train_and_unseen_labels_marked(data_copy):
    recs = load_records(data_copy)
    recs[0].labels["action"] = ["idle" if a == "wave" else a for a in recs[0].labels["action"]]
    vocab = build_vocab(recs[:1], ["action"])
    assert "wave" not in vocab["action"]
    ds = WindowDataset(recs, vocab, [Window(1, 0, recs[1].num_frames)], decode="none")
    lab = ds[0]["labels"]["action"].numpy()
    wave = np.array(recs[1].labels["action"]) == "wave"
    assert (lab[wave] == UNSEEN).all() and (lab[~wave] >= 0).all()  # the loss skips them, the metrics count them
    assert unseen_labels(recs[1:2], vocab) == {"action": {"wave": int(wave.sum())}}
    recs[0].labels["stance"] = [""] * recs[0].num_frames
    with pytest.raises(DataError, match="stance.*label some training frames"):
        build_vocab(recs[:1], ["action", "stance"])


# --- windows ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("decode,S", [("sampled", 16), ("all", 180), ("none", 0)])
def test_window_items_and_collate(demo_root, decode, S):
    recs = load_records(demo_root)
    vocab = build_vocab(recs, ["action", "stance"])
    ws = train_windows([r.num_frames for r in recs], 180, 90)
    ds = WindowDataset(recs, vocab, ws[:3], img_size=64, decode=decode)
    item = ds[1]
    w = ws[1]
    assert item["video"].shape == (S, 3, 64, 64) and item["video"].dtype == torch.uint8
    assert item["pose"].shape == (180, 17, 3) and item["has_pose"].item()
    assert item["frames"].tolist() == list(range(w.start, w.start + 180)) and item["mask"].all()
    if decode != "none":
        ref = read_frames(recs[w.video].video_path, item["video_frames"], 64)
        assert torch.equal(item["video"], ref)
        assert item["video_frames"].tolist() == (w.start + item["video_pos"]).tolist()
    stance = vocab["stance"]
    want = [stance.index(s) if s else IGNORE_INDEX for s in recs[w.video].labels["stance"][w.start:w.start + 180]]
    assert item["labels"]["stance"].tolist() == want
    b = collate([ds[0], ds[1], ds[2]])
    assert b["video"].shape == (3, S, 3, 64, 64) and b["labels"]["action"].shape == (3, 180)
    assert b["mask"].shape == (3, 180) and b["pose"].shape == (3, 180, 17, 3)
    assert b["video_id"] == [recs[x.video].stem for x in ws[:3]] and b["start"].tolist() == [x.start for x in ws[:3]]
    assert len(set(b["cache_key"])) == len({x.video for x in ws[:3]})


def test_video_shorter_than_the_window_is_padded_and_masked(demo_root):
    recs = load_records(demo_root)
    n = recs[0].num_frames
    T = 400
    vocab = build_vocab(recs, ["action"])
    ds = WindowDataset(recs, vocab, eval_windows([r.num_frames for r in recs], T), img_size=32)
    item = ds[0]
    assert item["mask"].sum() == n and not item["mask"][n:].any()
    assert (item["frames"][n:] == -1).all() and (item["labels"]["action"][n:] == IGNORE_INDEX).all()
    assert (item["pose"][n:] == 0).all() and item["video"].shape == (16, 3, 32, 32)
    assert item["video_frames"].max() == n - 1  # padding positions read the last real frame


def test_custom_positions_checked(demo_root):
    recs = load_records(demo_root)
    ds = WindowDataset(recs, build_vocab(recs, ["action"]), [Window(0, 0, 20)], img_size=32,
                       positions=lambda T: torch.tensor([0, T]))
    with pytest.raises(ValueError, match="0..19"):
        ds[0]


# --- bad input ---------------------------------------------------------------------------------------
def edit_csv(root: Path, stem: str, fn) -> Path:
    path = root / "Annotations" / f"{stem}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(df).to_csv(path, index=False)
    return path


def expect(root: Path, *patterns: str) -> DataError:
    """load_records raises a DataError matching every pattern; validate reports the same."""
    with pytest.raises(DataError) as info:
        load_records(root)
    msg = str(info.value)
    for p in patterns + ("Fix:",):
        assert p in msg, f"{p!r} not in:\n{msg}"
    report = validate(root)
    assert len(report[report.level == "error"]) == len(info.value.problems) >= 1
    return info.value


def test_csv_without_video(data_copy):
    shutil.copy(data_copy / "Annotations" / "demo_000.csv", data_copy / "Annotations" / "ghost.csv")
    expect(data_copy, "ghost.csv", "no video for this CSV", "add the video")


def test_video_without_csv(data_copy):
    shutil.copy(data_copy / "Videos" / "demo_000.mp4", data_copy / "Videos" / "extra.mp4")
    expect(data_copy, "extra.mp4", "no annotation CSV", "extra.csv")


def test_csv_without_action(data_copy):
    edit_csv(data_copy, "demo_000", lambda d: d.rename(columns={"action": "label"}))
    expect(data_copy, "demo_000.csv", "column 'action'", "add an `action` column")


@pytest.mark.parametrize("value,pattern", [("1.5", "not whole numbers"), ("abc", "not whole numbers"),
                                           ("-3", "negative frame"), ("5", "duplicate frame"),
                                           ("100000", "past the video's end")])
def test_bad_frame_numbers(data_copy, value, pattern):
    def change(d):
        d.loc[9, "frame"] = value  # line 11 of the file (header = line 1)
        return d
    edit_csv(data_copy, "demo_000", change)
    err = expect(data_copy, "demo_000.csv", pattern, "column 'frame'", "line 7" if value == "5" else "line 11")
    assert err.problems[0]["row"] == (7 if value == "5" else 11)


def write_segments(root: Path, rows: list[str]) -> None:
    (root / "Annotations" / "demo_000.csv").write_text("start_frame,end_frame,action,stance\n" + "\n".join(rows) + "\n")


def test_segment_csv_expands_inclusive_and_leaves_gaps_unlabeled(data_copy):
    write_segments(data_copy, ["0,9,idle,standing", "20,29,jump,"])
    r = load_records(data_copy)[0]
    assert r.labels["action"][:10] == ["idle"] * 10 and r.labels["action"][10:20] == [""] * 10
    assert r.labels["action"][20:30] == ["jump"] * 10 and set(r.labels["action"][30:]) == {""}
    assert r.labels["stance"][20:30] == [""] * 10


def test_overlapping_segments(data_copy):
    write_segments(data_copy, ["0,9,idle,standing", "20,29,jump,airborne", "9,15,wave,standing"])
    err = expect(data_copy, "demo_000.csv", "line 4", "overlaps segment 0-9 on line 2", "end_frame + 1")
    assert err.problems[0]["row"] == 4


def test_segment_end_before_start_and_past_end(data_copy):
    write_segments(data_copy, ["10,5,idle,standing", "20,99999,jump,airborne"])
    expect(data_copy, "demo_000.csv", "ends before it starts", "line 2", "past the video's end", "line 3")


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "not a video"])
def test_broken_video_files(data_copy, kind):
    path = data_copy / "Videos" / "demo_001.mp4"
    data = path.read_bytes()
    path.write_bytes({"zero-byte": b"", "truncated": data[: len(data) // 2],
                      "not a video": b"hello, I am a text file\n" * 100}[kind])
    err = expect(data_copy, "demo_001.mp4", "Fix:")
    assert ("0 bytes" if kind == "zero-byte" else "cannot open it as a video") in str(err)
    assert "re-export" in str(err) or "copy the video again" in str(err)


def test_truncated_video_whose_header_survives(data_copy):
    """An AVI cut in half still opens (its header is at the front) but decodes half its frames."""
    src = data_copy / "Videos" / "demo_000.mp4"
    avi = data_copy / "Videos" / "demo_000.avi"
    cap = cv2.VideoCapture(str(src))
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (128, 128))
    while (frame := cap.read())[0]:
        writer.write(frame[1])
    writer.release()
    src.unlink()
    avi.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    meta = probe_video(avi)
    assert meta.num_frames < meta.header_frames
    expect(data_copy, "demo_000.csv", "past the video's end", f"header claims {meta.header_frames}: truncated?")


def test_pose_wrong_number_of_frames(data_copy):
    kp = np.load(data_copy / "Poses" / "demo_000.npy")
    np.save(data_copy / "Poses" / "demo_000.npy", kp[:-5])
    expect(data_copy, "demo_000.npy", f"shape {kp[:-5].shape}", f"({len(kp)}, J, 2|3)", "pad frames")


def test_pose_wrong_last_dim(data_copy):
    kp = np.load(data_copy / "Poses" / "demo_000.npy")
    np.save(data_copy / "Poses" / "demo_000.npy", np.concatenate([kp, kp[..., :1]], -1))
    expect(data_copy, "demo_000.npy", "(num_frames, J, 2|3)")


def test_pose_unreadable(data_copy):
    (data_copy / "Poses" / "demo_000.npy").write_text("not numpy")
    expect(data_copy, "demo_000.npy", "not a readable .npy", "numpy.save")


def test_pose_nan_joints_masked_and_xy_only_accepted(data_copy):
    kp = np.load(data_copy / "Poses" / "demo_000.npy")[..., :2].copy()
    kp[3] = np.nan  # a whole frame without a pose
    kp[7, 5, 0] = np.inf
    np.save(data_copy / "Poses" / "demo_000.npy", kp)
    r = load_records(data_copy)[0]
    assert r.keypoints.shape == kp.shape[:2] + (3,)
    assert (r.keypoints[3] == 0).all() and (r.keypoints[7, 5] == 0).all()
    assert (r.keypoints[0, :, 2] == 1).all()  # no score given: trusted


def test_keypoints_in_csv_columns(data_copy):
    shutil.rmtree(data_copy / "Poses")
    def add_kp(d):
        for j in range(3):
            d[f"kp{j}_x"], d[f"kp{j}_y"] = str(10 + j), "20.5"
        d.loc[4, "kp1_x"] = ""  # missing joint
        d["kp0_score"] = "0.5"
        return d
    edit_csv(data_copy, "demo_000", add_kp)
    r = load_records(data_copy)[0]
    assert r.keypoints.shape == (r.num_frames, 3, 3) and r.tasks == ["action", "stance"]
    assert r.keypoints[0].tolist() == [[10, 20.5, 0.5], [11, 20.5, 1], [12, 20.5, 1]]
    assert r.keypoints[4, 1].tolist() == [0, 0, 0]
    edit_csv(data_copy, "demo_000", lambda d: d.assign(kp2_y="high"))
    expect(data_copy, "demo_000.csv", "column 'kp2_y'", "line 2", "non-numeric keypoint")


def test_empty_annotations_folder(data_copy):
    for p in (data_copy / "Annotations").iterdir():
        p.unlink()
    for p in (data_copy / "Videos").iterdir():
        p.unlink()
    expect(data_copy, "Annotations", "no annotation CSVs", "one <stem>.csv per video")


def test_missing_folder_and_no_data(tmp_path):
    expect(tmp_path, "Annotations", "folder not found")
    with pytest.raises(DataError, match="pass data_root"):
        load_records()


@pytest.mark.parametrize("content", [b"frame,action\n0,idle\n1,idle,extra,more\n", b"\xff\xfe\x00garbage\x00\x81",
                                     b"", b"frame,action,stance\n"])
def test_malformed_csv(data_copy, content):
    (data_copy / "Annotations" / "demo_000.csv").write_bytes(content)
    err = expect(data_copy, "demo_000.csv")
    assert any(w in str(err) for w in ("not a readable CSV", "no rows"))


def test_validate_collects_everything_and_touches_nothing(data_copy):
    shutil.copy(data_copy / "Annotations" / "demo_000.csv", data_copy / "Annotations" / "ghost.csv")
    edit_csv(data_copy, "demo_000", lambda d: d.drop(columns="action"))
    (data_copy / "Videos" / "demo_001.mp4").write_bytes(b"")
    before = snapshot(data_copy)
    report = validate(data_copy)
    assert list(report.columns) == ["file", "row", "column", "problem", "fix", "level"]
    assert set(report.level) == {"error"}
    assert sorted(Path(f).name for f in report.file) == ["demo_000.csv", "demo_001.mp4", "ghost.csv"]
    with pytest.raises(DataError, match="3 problem"):
        load_records(data_copy)
    assert snapshot(data_copy) == before


def test_splits_file_problems(data_copy):
    recs = load_records(data_copy)
    bad = data_copy / "splits.csv"
    for text, pattern in (("video,split\ndemo_000,train\ndemo_001,holdout\n", "use train, val or test"),
                          ("video,split\ndemo_000,train\n", "videos missing from the splits file"),
                          ("video,split\ndemo_000,train\ndemo_001,val\ndemo_009,val\n", "no annotated video"),
                          ("video,split\ndemo_000,train\ndemo_000.mp4,val\ndemo_001,val\n", "in two splits"),
                          ("vid,set\ndemo_000,train\n", "expected video,split"),
                          ("video,split\ndemo_000,val\ndemo_001,test\n", "no video in the train split")):
        bad.write_text(text)
        with pytest.raises(DataError, match=pattern) as info:
            split_records(recs)
        assert "splits.csv" in str(info.value) and "Fix:" in str(info.value)
    bad.write_text("video,split\ndemo_000.mp4,train\ndemo_001, VAL\n")
    assert [r.stem for r in split_records(recs)["val"]] == ["demo_001"]
    assert validate(data_copy).empty


def test_semicolon_csv_gets_a_separator_hint(data_copy):
    path = data_copy / "Annotations" / "demo_000.csv"
    path.write_text(path.read_text().replace(",", ";"))
    err = expect(data_copy, "demo_000.csv", "column 'action'", "comma-separated")
    assert validate(data_copy)["row"].dtype == "Int64" and err.problems[0]["row"] is None


def test_no_action_labels_in_training_videos(data_copy):
    edit_csv(data_copy, "demo_000", lambda d: d.assign(action=""))
    recs = load_records(data_copy)  # unlabeled frames are not an error by themselves
    assert tasks_of(recs[:1]) == ["action", "stance"]
    with pytest.raises(DataError, match="'action'.*no labeled frame in the 1 training videos"):
        build_vocab(recs[:1], tasks_of(recs[:1]))


def test_the_split_follows_split_seed_not_the_training_seed(demo_root, tmp_path):
    """Trying another training seed keeps the held-out videos (issue 13.7): only split_seed moves them."""
    from kit.config import RunConfig
    from kit.data.dataset import run_data

    root = tmp_path / "nosplits"  # the demo data without its splits.csv: the seeded split decides
    root.mkdir()
    for sub in ("Videos", "Annotations", "Poses"):
        (root / sub).symlink_to(demo_root / sub)

    def split(**kw):
        data = run_data(RunConfig(data_root=str(root), val_fraction=0.2, test_fraction=0.2, **kw))
        return {name: sorted(r.stem for r in recs) for name, recs in data.splits.items()}

    base = split()
    assert base["test"] and base["val"]
    assert all(split(seed=s) == base for s in (1, 7, 123))
    assert any(split(split_seed=s) != base for s in (1, 2, 3, 4, 5))
