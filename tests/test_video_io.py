"""kit.data.resize / kit.data.video / kit.data.stream: frame geometry (vs the HF processor), one-pass decoding."""
from __future__ import annotations

import itertools
import json
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

import kit.data.stream as stream
import kit.data.video as video
from kit.data.resize import _scale
from kit.data.stream import iter_frames
from kit.data.video import DECODE_STATS, DataError, Resize, probe_video, read_frames, reset_decode_stats

SHARED = ["demo.mp4", "demo_skeleton.mp4", "rawvideo_part_0.mp4", "test.avi", "test.mp4"]


def opencv_frames(path: Path):
    """The reference: plain ``cap.read()`` from the start, RGB, one frame at a time."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def first_frame(path: Path) -> np.ndarray:
    return next(opencv_frames(path))


def assert_same_stream(got, ref, name: str) -> int:
    """Frame-by-frame equality of two iterators of the same length (holding one frame of each)."""
    n = 0
    for n, (a, b) in enumerate(itertools.zip_longest(got, ref), 1):
        assert a is not None and b is not None, f"{name}: the streams differ in length at frame {n - 1}"
        assert a.shape == b.shape, f"{name} frame {n - 1}: {a.shape} vs {b.shape}"
        assert a.dtype == np.uint8 and a.flags.c_contiguous, f"{name} frame {n - 1}"
        np.testing.assert_array_equal(a, b, err_msg=f"{name} frame {n - 1}")
    return n


def hf_pixels(rgb: np.ndarray, pil: bool = False, **kw) -> np.ndarray:
    """The VideoMAE image processor's uint8 pixels for one frame, ``(224, 224, 3)``."""
    from transformers import VideoMAEImageProcessor, VideoMAEImageProcessorPil
    proc = (VideoMAEImageProcessorPil if pil else VideoMAEImageProcessor)(**kw)
    px = proc([rgb], do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0, 0]
    return px.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)


@pytest.fixture
def fresh_pyav_checks(monkeypatch):
    monkeypatch.setattr(stream, "_AV_AGREES", {})


# --- Resize ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(256, 340), (340, 256), (255, 341), (101, 77), (64, 64), (1080, 1920), (30, 41)])
@pytest.mark.parametrize("size", [224, 33])
def test_resize_geometry_per_mode(hw, size):
    from transformers.image_transforms import center_crop, get_resize_output_image_size
    h, w = hw
    img = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    # crop: HF's size rule (long edge truncated) and HF's centre crop (offsets floored: odd sizes).
    for short_side in (0, size + 3):
        r = Resize(size, short_side=short_side)
        nh, nw, top, left = r.geometry(h, w)
        assert (nh, nw) == get_resize_output_image_size(img, short_side or size, default_to_square=False,
                                                         input_data_format="channels_last")
        assert min(nh, nw) == (short_side or size)
        out = r(img)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
        scaled = _scale(img, nh, nw, "bilinear")  # (nh, nw, 3)
        np.testing.assert_array_equal(out, center_crop(scaled, (size, size), input_data_format="channels_last"))
        assert (top, left) == ((nh - size) // 2, (nw - size) // 2)
    # squash: every frame to size x size.
    assert Resize(size, "squash").geometry(h, w) == (size, size, 0, 0)
    np.testing.assert_array_equal(Resize(size, "squash")(img), _scale(img, size, size, "bilinear"))
    # pad: longest edge to size, centred (the extra pixel bottom / right), a border of `fill`.
    r = Resize(size, "pad", fill=(1, 2, 3))
    nh, nw, top, left = r.geometry(h, w)
    assert max(nh, nw) == size and min(nh, nw) == max(1, int(size * min(h, w) / max(h, w)))
    assert (top, left) == ((size - nh) // 2, (size - nw) // 2)
    out = r(img)
    inside = np.zeros((size, size), bool)
    inside[top:top + nh, left:left + nw] = True
    assert (out[~inside] == (1, 2, 3)).all()
    np.testing.assert_array_equal(out[top:top + nh, left:left + nw], _scale(img, nh, nw, "bilinear"))


def test_pad_places_the_scaled_frame():
    img = np.full((50, 100, 3), 200, np.uint8)
    out = Resize(20, "pad", fill=(9, 9, 9))(img)  # scaled to 10 x 20, rows 5..14
    assert (out[5:15] == 200).all() and (out[:5] == 9).all() and (out[15:] == 9).all()
    out = Resize(20, "pad")(np.full((100, 51, 3), 7, np.uint8))  # scaled to 20 x 10, columns 5..14
    assert (out[:, 5:15] == 7).all() and (out[:, :5] == 0).all() and (out[:, 15:] == 0).all()


@pytest.mark.parametrize("name", ["demo.mp4", "demo_skeleton.mp4"])
def test_crop_equals_the_hf_processor(shared_videos, name):
    """On real non-square frames (and an odd-sized cut of one): bit-identical to the transformers 5
    (torchvision) VideoMAE processor, within 1 level of its PIL backend."""
    rgb = first_frame(shared_videos / name)
    for frame in (rgb, np.ascontiguousarray(rgb[1:, 2:-1])):  # odd height and width
        np.testing.assert_array_equal(Resize(224)(frame), hf_pixels(frame))
        np.testing.assert_array_equal(Resize(224, interpolation="bicubic")(frame), hf_pixels(frame, resample=3))
        np.testing.assert_array_equal(Resize(224, short_side=256)(frame),
                                      hf_pixels(frame, size={"shortest_edge": 256}))
        diff = np.abs(Resize(224)(frame).astype(int) - hf_pixels(frame, pil=True))
        assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
    # the squash the kit used before differs a lot: the reason for this module
    assert np.abs(Resize(224, "squash")(rgb).astype(int) - hf_pixels(rgb)).mean() > 10


def test_squash_area_is_the_original_read_frames(shared_videos):
    path = shared_videos / "demo.mp4"
    bgr = cv2.cvtColor(first_frame(path), cv2.COLOR_RGB2BGR)
    legacy = Resize(64, "squash", interpolation="area")
    np.testing.assert_array_equal(legacy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), video._to_rgb(bgr, 64))
    idx = [7, 0, 7, 30]
    assert (read_frames(path, idx, legacy) == read_frames(path, idx, 64)).all()


def test_resize_validation_and_describe():
    for bad, match in [(dict(size=0), "size"), (dict(size=2.5), "size"), (dict(size=True), "size"),
                       (dict(size=8, mode="fit"), "mode"), (dict(size=8, interpolation="nearest"), "interpolation"),
                       (dict(size=8, short_side=4), ">= size"), (dict(size=8, mode="pad", short_side=9), "crop. only"),
                       (dict(size=8, fill=(0.5, 0.4, 0.4)), "fill"), (dict(size=8, fill=(0, 0)), "fill"),
                       (dict(size=8, fill=(0, 0, 256)), "fill")]:
        with pytest.raises(ValueError, match=match):
            Resize(**bad)
    with pytest.raises(ValueError, match=r"uint8 \(h, w, 3\)"):
        Resize(8)(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        Resize(8)(np.zeros((4, 4, 3), np.float32))
    d = Resize(224).describe()
    assert json.loads(json.dumps(d)) == d and d["short_side"] == 224 and d["mode"] == "crop" and "scaler" in d
    assert Resize(224, fill=(1, 2, 3)).describe() == d  # fill does not change a crop
    assert Resize(224, short_side=256).describe() != d
    assert Resize(224, "pad", fill=(1, 2, 3)).describe()["fill"] == [1, 2, 3]
    assert len({json.dumps(Resize(224, m, interpolation=i).describe(), sort_keys=True)
                for m in ("crop", "squash", "pad") for i in ("bilinear", "bicubic", "area")}) == 9
    assert Resize(8, fill=[1.0, 2, 3]).fill == (1, 2, 3) and hash(Resize(8)) == hash(Resize(8))
    # row-padded (as PyAV's 340-px frames), read-only and strided inputs give the same pixels
    img = np.random.default_rng(0).integers(0, 256, (25, 34, 3), dtype=np.uint8)
    padded = np.zeros((25, 36, 3), np.uint8)
    padded[:, :34] = img
    frozen = img.copy()
    frozen.flags.writeable = False
    for r in (Resize(16), Resize(16, "pad"), Resize(16, "squash", interpolation="area")):
        for variant in (padded[:, :34], frozen, np.asfortranarray(img)):
            np.testing.assert_array_equal(r(variant), r(img))


# --- iter_frames ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHARED)
def test_iter_frames_equals_opencv_on_real_videos(shared_videos, name, fresh_pyav_checks):
    path = shared_videos / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    reset_decode_stats()
    n = assert_same_stream(iter_frames(path), opencv_frames(path), name)
    assert n == probe_video(path).num_frames
    # PyAV really decoded it (no silent fallback), each frame once
    assert (DECODE_STATS["iter_pyav"], DECODE_STATS["iter_opencv"]) == (1, 0)
    assert DECODE_STATS["iter_decoded"] == DECODE_STATS["iter_converted"] == n
    # with a Resize: the same geometry as read_frames' random access (first 40 frames: B-frames included)
    r = Resize(48, short_side=50)
    k = min(n, 40)
    idx = [0, 1, k // 2, k - 1]
    frames = dict(enumerate(iter_frames(path, r, stop=k)))
    random_access = read_frames(path, idx, r).permute(0, 2, 3, 1).numpy()  # (S, 3, H, W) -> (S, H, W, 3)
    np.testing.assert_array_equal(np.stack([frames[i] for i in idx]), random_access)


def test_iter_frames_equals_opencv_on_demo_videos(demo_root, fresh_pyav_checks):
    for path in sorted((demo_root / "Videos").glob("*.mp4"))[:2]:  # mp4v (MPEG-4 part 2)
        reset_decode_stats()
        assert assert_same_stream(iter_frames(path), opencv_frames(path), path.name) == probe_video(path).num_frames
        assert DECODE_STATS["iter_pyav"] == 1
        r = Resize(40, "pad", fill=(5, 6, 7))
        assert_same_stream(iter_frames(path, r, backend="pyav"), map(r, opencv_frames(path)), path.name)


@pytest.mark.parametrize("backend", ["auto", "opencv"])
def test_iter_frames_start_stop(shared_videos, backend):
    path = shared_videos / "test.avi"  # B-frames
    ref = list(itertools.islice(opencv_frames(path), 40))
    reset_decode_stats()
    got = list(iter_frames(path, start=25, stop=40, backend=backend))
    assert len(got) == 15 and all(np.array_equal(a, b) for a, b in zip(got, ref[25:40]))
    assert DECODE_STATS["iter_decoded"] == 40 and DECODE_STATS["iter_converted"] == 15  # decoded from frame 0
    n = probe_video(path).num_frames
    assert list(iter_frames(path, start=7, stop=7, backend=backend)) == []
    tail = list(iter_frames(path, Resize(16), start=n - 2, backend=backend))
    assert len(tail) == 2 and tail[0].shape == (16, 16, 3)
    for start, stop in [(-1, 5), (5, 4), (0, n + 1)]:
        with pytest.raises(IndexError, match="test.avi"):
            iter_frames(path, start=start, stop=stop, backend=backend)


@pytest.mark.parametrize("backend", ["auto", "opencv"])
def test_iter_frames_is_lazy_and_bounded(shared_videos, backend):
    path = shared_videos / "demo.mp4"  # 280 frames of 340 x 256: 73 MB if held at once
    frame_bytes = 256 * 340 * 3
    reset_decode_stats()
    it = iter_frames(path, backend=backend)
    assert DECODE_STATS["iter_decoded"] == 0  # nothing decoded before it is asked for
    next(it)
    assert DECODE_STATS["iter_decoded"] == 1
    tracemalloc.start()
    try:
        n = 1 + sum(1 for _ in it)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 280 and peak < 6 * frame_bytes, f"peak {peak / 1e6:.1f} MB while iterating"


def test_iter_frames_without_pyav(shared_videos, monkeypatch, fresh_pyav_checks):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    path = shared_videos / "rawvideo_part_0.mp4"
    reset_decode_stats()
    r = Resize(32)
    assert assert_same_stream(iter_frames(path, r), map(r, opencv_frames(path)), path.name) == 32
    assert (DECODE_STATS["iter_pyav"], DECODE_STATS["iter_opencv"]) == (0, 1)
    with pytest.raises(ImportError, match="pip install"):
        iter_frames(path, backend="pyav")


class _Container:
    """A PyAV container whose decoder drops the first frame or repeats the last: a decoder that
    disagrees with OpenCV on a file."""

    def __init__(self, real, fault):
        self.real, self.fault, self.streams = real, fault, real.streams

    def demux(self, *a):
        return self.real.demux(*a)

    def decode(self, stream):
        frames = self.real.decode(stream)
        if self.fault == "drop_first":
            return itertools.islice(frames, 1, None)
        return self._repeat_last(frames)

    @staticmethod
    def _repeat_last(frames):
        f = None
        for f in frames:
            yield f
        yield f

    def close(self):
        self.real.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


@pytest.mark.parametrize("fault", ["drop_first", "repeat_last"])
def test_a_disagreeing_pyav_falls_back(shared_videos, monkeypatch, fresh_pyav_checks, fault):
    import av
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: _Container(real_open(*a, **k), fault))
    path = shared_videos / "rawvideo_part_0.mp4"
    n = probe_video(path).num_frames
    if fault == "drop_first":  # caught before the pass: the first frames differ
        reset_decode_stats()
        assert not stream.pyav_agrees(path)
        assert assert_same_stream(iter_frames(path), opencv_frames(path), path.name) == n
        assert (DECODE_STATS["iter_pyav"], DECODE_STATS["iter_opencv"]) == (0, 1)
        return
    # an extra frame at the end: only the count of a full pass shows it
    assert stream.pyav_agrees(path)
    with pytest.raises(DataError, match=rf"rawvideo_part_0.mp4.*more than {n} frames.*OpenCV"):
        sum(1 for _ in iter_frames(path))
    assert not stream.pyav_agrees(path)  # the file is marked: the next pass decodes with OpenCV
    reset_decode_stats()
    assert assert_same_stream(iter_frames(path), opencv_frames(path), path.name) == n
    assert DECODE_STATS["iter_opencv"] == 1
    monkeypatch.setattr(stream, "_AV_AGREES", {})
    assert len(list(iter_frames(path, stop=n - 1, backend="pyav"))) == n - 1  # a partial pass is not affected


def test_iter_frames_bad_files(tmp_path):
    missing, empty, text = tmp_path / "missing.mp4", tmp_path / "empty.mp4", tmp_path / "notes.mp4"
    empty.write_bytes(b"")
    text.write_text("not a video\n" * 100)
    for path, what in [(missing, "not found"), (empty, "empty file"), (text, "cannot open")]:
        for backend in ("auto", "pyav", "opencv"):
            with pytest.raises(DataError, match=rf"{path.name}.*{what}"):
                iter_frames(path, backend=backend)  # raises at the call, before any frame
    with pytest.raises(ValueError, match="backend"):
        iter_frames(missing, backend="ffmpeg")
    with pytest.raises(TypeError, match="Resize"):
        iter_frames(missing, resize=224)
