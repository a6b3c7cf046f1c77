"""What labelling a new video writes: tables, MS-TCN file, barcode, overlay video, notebook views.

Synthetic probabilities with known runs check the tables exactly; every video of ../shared/videos
and a demo video check the files against the real frame count, fps and decoded overlay.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

import kit.results.labelling as labelling  # noqa: E402
import kit.results.overlay as overlay  # noqa: E402
from kit.data import VIDEO_EXTS, probe_video  # noqa: E402
from kit.data.mstcn import read_result  # noqa: E402
from kit.files import atomic_path  # noqa: E402
from kit.results.barcode import barcode  # noqa: E402
from kit.results.plots import class_colors  # noqa: E402
from kit.results.prediction_view import prediction_frame, prediction_scrubber  # noqa: E402

VOCAB = {"action": ["idle", "pour milk", "stir"], "stance": ["standing", "sitting"]}


def probs_from(runs: dict[str, list[tuple[int, int]]], vocab=VOCAB, sure: float = 0.8) -> dict[str, np.ndarray]:
    """``{task: [(class index, frames), ...]}`` -> probabilities whose argmax follows those runs.

    The winning class gets ``sure`` minus a small ramp per frame (so mean_prob is not trivial).
    """
    out = {}
    for task, rr in runs.items():
        idx = np.concatenate([np.full(n, c) for c, n in rr])  # (L,)
        K, L = len(vocab[task]), len(idx)
        top = sure - 0.1 * np.arange(L) / L  # (L,) stays above 1/K
        p = np.repeat(((1 - top) / (K - 1))[:, None], K, 1)  # (L, K)
        p[np.arange(L), idx] = top
        out[task] = p.astype(np.float32)
    return out


def random_probs(L: int, vocab=VOCAB, seed: int = 0, seg: int = 17, margin: float = 2.5) -> dict[str, np.ndarray]:
    """Runs of ``seg`` frames of random classes, their logit ``margin`` above noise (some flicker)."""
    rng = np.random.default_rng(seed)
    out = {}
    for task, names in vocab.items():
        idx = np.repeat(rng.integers(0, len(names), L // seg + 1), seg)[:L]  # (L,)
        logits = rng.normal(size=(L, len(names)))
        logits[np.arange(L), idx] += margin
        e = np.exp(logits)
        out[task] = (e / e.sum(1, keepdims=True)).astype(np.float32)
    return out


RUNS = {"action": [(0, 5), (1, 3), (0, 2), (2, 10)], "stance": [(1, 12), (0, 8)]}  # L = 20


def frame_count(path) -> int:
    """Frames decoded sequentially (independent of any container header)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def assert_tiles(seg: pd.DataFrame, L: int, fps: float) -> None:
    for task, s in seg.groupby("task"):
        assert s["start_frame"].iloc[0] == 0 and s["end_frame"].iloc[-1] == L - 1, task
        assert (s["start_frame"].to_numpy()[1:] == s["end_frame"].to_numpy()[:-1] + 1).all(), task
        assert s["frames"].sum() == L and (s["frames"] == s["end_frame"] - s["start_frame"] + 1).all()
        assert np.allclose(s["start_s"].to_numpy()[1:], s["end_s"].to_numpy()[:-1])
        assert s["end_s"].iloc[-1] == pytest.approx(L / fps, abs=1e-4)  # CSVs hold 4 decimals
        assert (s["label"].to_numpy()[1:] != s["label"].to_numpy()[:-1]).all(), "runs must be maximal"


# --- tables ---------------------------------------------------------------------------------------
def test_frame_table_follows_argmax():
    probs = probs_from(RUNS)
    df = labelling.frame_table(probs, VOCAB, fps=10.0)
    assert list(df.columns) == ["frame", "time_s", "action", "action_prob", "stance", "stance_prob"]
    assert len(df) == 20 and df["frame"].tolist() == list(range(20))
    assert df["time_s"].tolist() == pytest.approx([f / 10 for f in range(20)])
    assert df["action"].tolist() == ["idle"] * 5 + ["pour milk"] * 3 + ["idle"] * 2 + ["stir"] * 10
    assert df["stance"].tolist() == ["sitting"] * 12 + ["standing"] * 8
    assert df["action_prob"].to_numpy() == pytest.approx(probs["action"].max(1))


def test_segments_table_runs_and_times():
    probs = probs_from(RUNS)
    seg = labelling.segments_table(probs, VOCAB, fps=4.0)
    assert list(seg.columns) == ["task", "segment", "start_frame", "end_frame", "start_s", "end_s", "duration_s",
                                 "frames", "label", "mean_prob"]
    act = seg[seg["task"] == "action"]
    assert act["label"].tolist() == ["idle", "pour milk", "idle", "stir"]
    assert act["segment"].tolist() == [0, 1, 2, 3]
    assert act["start_frame"].tolist() == [0, 5, 8, 10] and act["end_frame"].tolist() == [4, 7, 9, 19]
    assert act["start_s"].tolist() == [0, 1.25, 2.0, 2.5] and act["end_s"].tolist() == [1.25, 2.0, 2.5, 5.0]
    assert act["duration_s"].tolist() == [1.25, 0.75, 0.5, 2.5]
    assert act["mean_prob"].iloc[1] == pytest.approx(probs["action"][5:8].max(1).mean())
    assert seg[seg["task"] == "stance"]["label"].tolist() == ["sitting", "standing"]
    assert_tiles(seg, 20, 4.0)


def test_summary_table_over_videos():
    a = labelling.segments_table(probs_from(RUNS), VOCAB, fps=10.0)
    b = labelling.segments_table(probs_from({"action": [(1, 10)], "stance": [(0, 10)]}), VOCAB, fps=5.0)
    s = labelling.summary_table({"a": a, "b": b}, VOCAB)
    assert list(s.columns) == ["task", "label", "videos", "segments", "frames", "seconds", "share_pct",
                               "mean_segment_s"]
    assert s[["task", "label"]].values.tolist() == [[t, c] for t in VOCAB for c in VOCAB[t]]  # vocab order
    row = s.set_index(["task", "label"])
    assert row.loc[("action", "pour milk"), ["videos", "segments", "frames"]].tolist() == [2, 2, 13]
    assert row.loc[("action", "pour milk"), "seconds"] == pytest.approx(0.3 + 2.0)
    assert row.loc[("action", "idle"), "mean_segment_s"] == pytest.approx((0.5 + 0.2) / 2)
    assert row.loc[("action", "stir"), "videos"] == 1
    for task in VOCAB:
        assert row.loc[task, "share_pct"].sum() == pytest.approx(100)
        assert row.loc[task, "seconds"].sum() == pytest.approx(2.0 + 2.0)  # 20 frames at 10 fps + 10 at 5
    never = labelling.summary_table([b], VOCAB).set_index(["task", "label"]).loc[("action", "stir")]
    assert never[["videos", "segments", "frames"]].tolist() == [0, 0, 0] and np.isnan(never["mean_segment_s"])
    by_time = labelling.summary_table([a])  # without vocab: most time first, only predicted classes
    assert by_time[by_time["task"] == "action"]["label"].tolist() == ["stir", "idle", "pour milk"]


@pytest.mark.parametrize("bad, match", [
    (dict(probs={"action": np.full((4, 3), 1 / 3)}), "tasks"),
    (dict(probs={"action": np.full((4, 2), 0.5), "stance": np.full((4, 2), 0.5)}), r"\(L, 3\)"),
    (dict(probs={"action": np.zeros((4, 3)), "stance": np.full((4, 2), 0.5)}), "softmax"),
    (dict(probs={"action": np.full((4, 3), np.nan), "stance": np.full((4, 2), 0.5)}), "NaN"),
    (dict(probs={"action": np.full((4, 3), 1 / 3), "stance": np.full((5, 2), 0.5)}), "frames"),
    (dict(fps=0), "fps"),
])
def test_bad_input_is_refused(bad, match):
    args = dict(probs=probs_from(RUNS), vocab=VOCAB, fps=10.0) | bad
    with pytest.raises(ValueError, match=match):
        labelling.frame_table(**args)


def test_task_named_like_a_column_is_refused():
    with pytest.raises(ValueError, match="clash"):
        labelling.frame_table({"frame": np.full((3, 2), 0.5)}, {"frame": ["a", "b"]}, 10.0)


def test_mstcn_labels_underscores_and_clashes():
    assert labelling.mstcn_labels(["pour milk", "stir", "take  the\tcup"]) == ["pour_milk", "stir", "take_the_cup"]
    with pytest.raises(ValueError, match="same name"):
        labelling.mstcn_labels(["pour milk", "pour_milk"])


# --- files ----------------------------------------------------------------------------------------
def test_write_outputs_without_video(tmp_path):
    probs = probs_from(RUNS)
    paths = labelling.write_video_outputs(tmp_path / "out", "clip", probs, VOCAB, fps=10.0)
    assert set(paths) == {"frames", "segments", "mstcn", "barcode"}
    assert labelling.outputs_done(tmp_path / "out", "clip")
    assert not labelling.outputs_done(tmp_path / "out", "clip", overlay=True)
    frames = labelling.read_frame_table(paths["frames"])
    assert len(frames) == 20 and list(frames.columns) == list(labelling.frame_table(probs, VOCAB, 10.0).columns)
    assert frames["action"].tolist() == labelling.frame_table(probs, VOCAB, 10.0)["action"].tolist()
    assert read_result(paths["mstcn"]) == [x.replace(" ", "_") for x in frames["action"]]
    assert_tiles(pd.read_csv(paths["segments"], keep_default_na=False), 20, 10.0)
    assert paths["barcode"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    paths["segments"].unlink()
    assert not labelling.outputs_done(tmp_path / "out", "clip")
    with pytest.raises(ValueError, match="video_path"):
        labelling.write_video_outputs(tmp_path / "out", "clip", probs, VOCAB, 10.0, overlay=True)


def test_class_named_na_survives_the_csv(tmp_path):
    vocab = {"action": ["NA", "None"]}
    probs = probs_from({"action": [(0, 3), (1, 2)]}, vocab)
    paths = labelling.write_video_outputs(tmp_path, "v", probs, vocab, fps=5.0)
    assert labelling.read_frame_table(paths["frames"])["action"].tolist() == ["NA"] * 3 + ["None"] * 2


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "a.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target, keep_suffix=True) as tmp:
        assert tmp.suffix == ".csv" and tmp.name.startswith(".a.csv.")
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o644  # as readable as any file the user writes


def test_a_failing_write_leaves_no_final_file(tmp_path, monkeypatch):
    def broken_barcode(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(labelling, "barcode", broken_barcode)
    with pytest.raises(RuntimeError, match="disk full"):
        labelling.write_video_outputs(tmp_path, "clip", probs_from(RUNS), VOCAB, fps=10.0)
    assert not (tmp_path / "clip.png").exists()
    assert not labelling.outputs_done(tmp_path, "clip")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_a_failing_overlay_leaves_no_video(tmp_path, monkeypatch, demo_root):
    video = demo_root / "Videos" / "demo_000.mp4"
    L = probe_video(video).num_frames
    draw = overlay._Panel.draw

    def dies_midway(self, f):
        if f == 10:
            raise KeyboardInterrupt  # like a killed run
        return draw(self, f)

    monkeypatch.setattr(overlay._Panel, "draw", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        overlay.write_overlay(video, tmp_path / "v.overlay.mp4", random_probs(L), VOCAB)
    assert list(tmp_path.iterdir()) == []


# --- barcode --------------------------------------------------------------------------------------
def test_barcode_one_ribbon_per_task():
    probs = probs_from(RUNS)
    fig = barcode(probs, VOCAB, fps=10.0, title="clip")
    ribbons = [ax for ax in fig.axes if ax.get_label().startswith("ribbon ")]
    assert [ax.get_label() for ax in ribbons] == ["ribbon action", "ribbon stance"]
    seg = labelling.segments_table(probs, VOCAB, 10.0)
    for ax, task in zip(ribbons, VOCAB):
        bars = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bars) == 1
        labels = seg[seg["task"] == task]["label"].tolist()
        colors = class_colors(VOCAB[task])
        assert [tuple(fc) for fc in bars[0].get_facecolors()] == [tuple(colors[c]) for c in labels]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [c for c in VOCAB[task] if c in labels]
    conf = fig.axes[len(VOCAB)]
    assert len(conf.get_lines()) == 2 + 1  # one curve per task, and the 0.5 line
    assert conf.get_xlim() == pytest.approx((0, 2.0))  # seconds
    assert "20 frames, 2.0 s at 10 fps" in fig._suptitle.get_text()


def test_barcode_of_a_long_video_draws_runs(tmp_path):
    L = 100_000
    probs = random_probs(L, seed=1, seg=500, margin=5.0)
    fig = barcode(probs, VOCAB, fps=25.0, save=tmp_path / "b.png")
    runs = len(labelling.segments_table(probs, VOCAB, 25.0).query("task == 'action'"))
    bars = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)][0]
    assert len(bars.get_paths()) == runs < L / 10  # runs, not frames
    assert fig.axes[len(VOCAB)].xaxis.get_label().get_text() == "time (m:ss)"  # 66 minutes
    assert (tmp_path / "b.png").stat().st_size > 0


# --- real videos ----------------------------------------------------------------------------------
def check_video_outputs(video, tmp_path, vocab=VOCAB, with_overlay=True):
    """Writes every output of ``video`` and checks each against the video (the overlay decoded)."""
    meta = probe_video(video)
    L = meta.num_frames
    probs = random_probs(L, vocab)
    paths = labelling.write_video_outputs(tmp_path, video.stem, probs, vocab, meta.fps, video_path=video,
                                          overlay=with_overlay)
    assert labelling.outputs_done(tmp_path, video.stem, overlay=with_overlay)
    assert all(p.is_file() for p in paths.values())
    frames = labelling.read_frame_table(paths["frames"])
    assert len(frames) == L, video.name
    assert_tiles(pd.read_csv(paths["segments"], keep_default_na=False), L, meta.fps)
    assert len(read_result(paths["mstcn"])) == L
    if not with_overlay:
        return paths, probs
    out = paths["overlay"]
    assert frame_count(out) == L, f"{video.name}: overlay frames"
    assert probe_video(out).fps == pytest.approx(meta.fps, rel=1e-3)
    cap_in, cap_out = cv2.VideoCapture(str(video)), cv2.VideoCapture(str(out))
    a, b = cap_in.read()[1], cap_out.read()[1]
    cap_in.release(), cap_out.release()
    k = max(1, -(-overlay.MIN_WIDTH // a.shape[1]))
    big = cv2.resize(a, (a.shape[1] * k, a.shape[0] * k), interpolation=cv2.INTER_NEAREST)
    assert b.shape != a.shape, "nothing drawn: the overlay is the input"
    video_part, panel = b[:big.shape[0], :big.shape[1]], b[big.shape[0]:]
    assert np.abs(video_part.astype(int) - big).mean() < 8, "the video is not in the overlay"
    assert panel.std() > 20, "the panel has no text or timeline"
    return paths, probs


def test_outputs_of_every_shared_video(shared_videos, tmp_path):
    """Tables, MS-TCN file and barcode for every video; the overlay (the slow part) once per kind of
    file (codec and size), on its shortest video: the same decoding and encoding paths."""
    videos = sorted(p for p in shared_videos.iterdir() if p.suffix.lower() in VIDEO_EXTS)
    assert videos
    kinds = {}
    for v in sorted(videos, key=lambda v: probe_video(v).num_frames):
        cap = cv2.VideoCapture(str(v))
        kinds.setdefault((int(cap.get(cv2.CAP_PROP_FOURCC)), probe_video(v).width, probe_video(v).height), v)
        cap.release()
    assert len(kinds) >= 3  # here: h264 340x256, h264 1920x1080, MPEG-4 part 2 320x240
    for video in videos:
        check_video_outputs(video, tmp_path / video.stem, with_overlay=video in kinds.values())


def test_outputs_of_a_demo_video(demo_root, tmp_path):
    video = demo_root / "Videos" / "demo_001.mp4"
    vocab = {"action": ["idle", "jump", "walk_left", "walk_right", "wave"],
             "stance": ["airborne", "crouching", "standing"]}
    paths, probs = check_video_outputs(video, tmp_path, vocab)
    b = cv2.VideoCapture(str(paths["overlay"]))
    first = b.read()[1]
    assert first.shape[1] >= overlay.MIN_WIDTH  # 128 px demo frames are scaled up for legible text
    b.set(cv2.CAP_PROP_POS_FRAMES, probe_video(video).num_frames - 1)
    last = b.read()[1]
    b.release()
    assert np.abs(first[-40:].astype(int) - last[-40:]).mean() > 1, "the panel does not follow the frame"


def test_text_size_follows_the_width():
    tops = {"action": (np.zeros(10, np.int64), np.full(10, 0.9, np.float32))}
    small = overlay._Panel(tops, {"action": ["a"]}, 25.0, 384)
    hd = overlay._Panel(tops, {"action": ["a"]}, 25.0, 1920)
    assert small.font.size >= 13 and hd.font.size >= 36
    assert hd.draw(0).shape == (hd.height, 1920, 3)


def test_fallback_codecs(shared_videos, tmp_path, caplog):
    video = shared_videos / "rawvideo_part_0.mp4"
    meta = probe_video(video)
    probs = random_probs(meta.num_frames)
    if not overlay.encoder_works(overlay.ENCODERS[3]) and not overlay.encoder_works(overlay.ENCODERS[4]):
        pytest.skip("no VP9 encoder here")
    info = overlay.write_overlay(video, tmp_path / "v.overlay.mp4", probs, VOCAB, codecs=("vp9",))
    assert info.path == tmp_path / "v.overlay.webm" and info.codec == "vp9"
    assert frame_count(info.path) == meta.num_frames
    assert labelling.outputs_done(tmp_path, "v", overlay=True) is False  # the tables are missing
    info = overlay.write_overlay(video, tmp_path / "m.overlay.mp4", probs, VOCAB, codecs=("mpeg4",))
    assert info.codec == "mpeg4" and frame_count(info.path) == meta.num_frames
    assert "MPEG-4 part 2" in caplog.text
    with pytest.raises(ValueError, match="unknown codec"):
        overlay.pick_encoder(("hevc",))


def test_without_pyav_the_overlay_is_webm(shared_videos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails
    monkeypatch.setattr(overlay, "_WORKS", {})
    enc = overlay.pick_encoder()
    assert enc.backend == "opencv" and enc.codec in overlay.BROWSER_CODECS  # OpenCV's wheels: VP9/VP8 WebM
    video = shared_videos / "rawvideo_part_0.mp4"
    L = probe_video(video).num_frames
    info = overlay.write_overlay(video, tmp_path / "v.overlay.mp4", random_probs(L), VOCAB)
    assert info.path.suffix == enc.suffix and "OpenCV" in info.encoder and frame_count(info.path) == L


def test_h264_when_pyav_is_installed():
    pytest.importorskip("av")
    assert overlay.pick_encoder().codec == "h264"


def test_overlay_refuses_a_frame_count_mismatch(shared_videos, tmp_path):
    video = shared_videos / "rawvideo_part_0.mp4"
    with pytest.raises(ValueError, match="frames"):
        overlay.write_overlay(video, tmp_path / "x.mp4", random_probs(10), VOCAB)
    with pytest.raises(ValueError, match="frames"):
        labelling.write_video_outputs(tmp_path, "x", random_probs(10), VOCAB, 30.0, video_path=video)
    assert list(tmp_path.iterdir()) == []


# --- notebook views -------------------------------------------------------------------------------
def test_prediction_frame_and_scrubber(demo_root, tmp_path):
    video = demo_root / "Videos" / "demo_000.mp4"
    L = probe_video(video).num_frames
    probs = probs_from({"action": [(0, 40), (2, L - 40)], "stance": [(1, L)]})
    paths = labelling.write_video_outputs(tmp_path, "demo_000", probs, VOCAB, 25.0)
    fig = prediction_frame(video, paths["frames"], 45, VOCAB)
    img_ax, rib = fig.axes
    assert "frame 45 / " in img_ax.get_title(loc="left")
    texts = [t.get_text() for t in img_ax.get_legend().get_texts()]
    assert texts == [f"action: stir ({100 * probs['action'][45].max():.0f}%)",
                     f"stance: sitting ({100 * probs['stance'][45].max():.0f}%)"]
    assert rib.get_lines()[0].get_xdata()[0] == pytest.approx(45.5)  # the cursor
    with pytest.raises(ValueError, match="frames"):
        prediction_frame(video, labelling.read_frame_table(paths["frames"]).iloc[:10], 0)
    box = prediction_scrubber(video, paths["frames"], VOCAB)
    (prev_b, slider, next_b), _ = box.children[0].children, box.children[1]
    next_b.click()
    assert slider.value == 40  # the next change of the action
    next_b.click()
    assert slider.value == 40  # no later change
    prev_b.click()
    assert slider.value == 0
