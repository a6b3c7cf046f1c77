"""The overlay video: every frame of a video with its predicted labels, their probabilities and a
timeline with a cursor, encoded so that a browser plays it.

An output frame is the input frame with a panel below it (nothing of the video is covered)::

    +--------------------------------------+
    |            the input frame           |   H (scaled up by a whole factor when W < MIN_WIDTH)
    +--------------------------------------+
    | [#] action: pour milk            87% |   per task: the predicted class and its probability,
    | [========ribbon======|=============] |   then the task's timeline with a cursor at this frame
    | frame 123 / 279          4.39 / 9.97 s |
    +--------------------------------------+

The text is about 2% of the width high (13 px at least), so it reads on 128x128 demo videos (shown
at 384x384) as on 1080p. The video is decoded frame by frame with OpenCV (the decoder
``kit.data.video`` uses, so frame counts agree with ``probe_video``) and never held whole.

Encoders, the first that works here is used (:data:`ENCODERS`, probed once per process):
H.264 in MP4 (PyAV's libx264 or libopenh264, OpenCV's ``avc1``), else VP9 then VP8 in WebM,
else MPEG-4 part 2 in MP4 with a warning (most browsers do not play it). PyAV's wheels bundle
libx264; OpenCV's pip wheels have no H.264 encoder.

Legend: ``L`` frames, ``K`` classes of a task, ``H, W`` output video size, ``P`` panel height.
"""
from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from kit.data.video import DataError, probe_video, problem
from kit.files import atomic_path
from kit.log import log
from kit.results.barcode import top_labels
from kit.results.plots import class_colors

MIN_WIDTH = 320  # narrower videos are scaled up by a whole factor so that the text stays legible
BROWSER_CODECS = ("h264", "vp9", "vp8")
DEFAULT_CODECS = ("h264", "vp9", "vp8", "mpeg4")  # preference order


@dataclass(frozen=True)
class Encoder:
    codec: str  # what a player sees: "h264", "vp9", "vp8" or "mpeg4"
    backend: str  # "pyav" or "opencv"
    name: str  # PyAV encoder name or OpenCV fourcc
    suffix: str  # container: ".mp4" or ".webm"


ENCODERS = (
    Encoder("h264", "pyav", "libx264", ".mp4"), Encoder("h264", "pyav", "libopenh264", ".mp4"),
    Encoder("h264", "opencv", "avc1", ".mp4"),
    Encoder("vp9", "pyav", "libvpx-vp9", ".webm"), Encoder("vp9", "opencv", "VP90", ".webm"),
    Encoder("vp8", "pyav", "libvpx", ".webm"), Encoder("vp8", "opencv", "VP80", ".webm"),
    Encoder("mpeg4", "pyav", "mpeg4", ".mp4"), Encoder("mpeg4", "opencv", "mp4v", ".mp4"),
)
# Fast presets at a quality where the panel's text stays sharp: an overlay is for looking at.
PYAV_OPTIONS = {"libx264": {"crf": "23", "preset": "veryfast"},
                "libvpx-vp9": {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
                "libvpx": {"crf": "10", "deadline": "realtime", "cpu-used": "8"}}
BITS_PER_PIXEL = 0.25  # bit rate of the encoders without a constant-quality mode (or, for VP8, its cap)
_WORKS: dict[Encoder, bool] = {}


@dataclass(frozen=True)
class OverlayInfo:
    path: Path  # the file written (its suffix follows the container: .mp4 or .webm)
    codec: str  # "h264", "vp9", "vp8" or "mpeg4"
    encoder: str  # e.g. "libx264 (PyAV)"
    frames: int
    fps: float
    width: int
    height: int


class _Writer:
    """Frames ``(H, W, 3)`` uint8 BGR in, one video file out, through PyAV or OpenCV."""

    def __init__(self, path: Path, enc: Encoder, width: int, height: int, fps: float):
        self.enc = enc
        if enc.backend == "pyav":
            import av

            fmt = "webm" if enc.suffix == ".webm" else "mp4"
            # faststart: the index at the front, so a browser starts playing before the download ends
            self.out = av.open(str(path), "w", format=fmt, options={"movflags": "+faststart"} if fmt == "mp4" else {})
            self.stream = self.out.add_stream(enc.name, rate=Fraction(fps).limit_denominator(1001))
            self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
            self.stream.options = dict(PYAV_OPTIONS.get(enc.name, {}))
            if enc.name in ("libopenh264", "libvpx", "mpeg4"):
                self.stream.bit_rate = int(BITS_PER_PIXEL * width * height * fps)
            # Frames are converted by OpenCV (5x faster than swscale at 1080p): BT.601, limited range.
            # Tagged, so players do not guess BT.709 for HD sizes and shift the colours.
            with contextlib.suppress(AttributeError, TypeError, ValueError):  # PyAV < 13 cannot set the tags
                self.stream.codec_context.colorspace, self.stream.codec_context.color_range = 5, 1
        else:
            self.out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*enc.name), fps, (width, height))
            if not self.out.isOpened():
                raise RuntimeError(f"OpenCV cannot open a {enc.name} writer")

    def write(self, bgr: np.ndarray) -> None:
        if self.enc.backend == "pyav":
            import av

            i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # (H * 3/2, W): Y plane, then U and V
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(i420, format="yuv420p")):
                self.out.mux(packet)
        else:
            self.out.write(bgr)

    def close(self) -> None:
        if self.enc.backend == "pyav":
            for packet in self.stream.encode():  # flush the frames the encoder holds back
                self.out.mux(packet)
            self.out.close()
        else:
            self.out.release()


def encoder_works(enc: Encoder) -> bool:
    """Whether ``enc`` encodes here (two 64x64 frames to a temporary file; cached per process)."""
    if enc not in _WORKS:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"probe{enc.suffix}"
                w = _Writer(path, enc, 64, 64, 25.0)
                for i in range(2):
                    w.write(np.full((64, 64, 3), 60 * i, np.uint8))
                w.close()
                _WORKS[enc] = path.stat().st_size > 0
        except Exception:  # a missing module, encoder or library: simply not available
            _WORKS[enc] = False
    return _WORKS[enc]


def pick_encoder(codecs: Sequence[str] | None = None) -> Encoder:
    """The first working encoder of :data:`ENCODERS` for ``codecs`` (preference order; default all)."""
    codecs = tuple(codecs or DEFAULT_CODECS)
    unknown = set(codecs) - {e.codec for e in ENCODERS}
    if unknown:
        raise ValueError(f"unknown codec(s) {sorted(unknown)}: choose from h264, vp9, vp8, mpeg4")
    for codec in codecs:
        for enc in ENCODERS:
            if enc.codec == codec and encoder_works(enc):
                return enc
    raise RuntimeError(f"no encoder for {list(codecs)} works here: pip install av (PyAV bundles libx264 and libvpx)")


class _Panel:
    """The strip drawn under each frame: per task a text row and a ribbon, then a frame/time line."""

    def __init__(self, tops: dict, vocab: Mapping[str, Sequence[str]], fps: float, width: int):
        from matplotlib import font_manager
        from PIL import ImageFont

        self.tops, self.vocab, self.fps, self.W = tops, vocab, fps, width
        self.L = len(next(iter(tops.values()))[0])
        fs = max(13, round(0.02 * width))
        path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
        bold = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold"))
        self.font, self.bold = ImageFont.truetype(path, fs), ImageFont.truetype(bold, fs)
        self.pad, self.row, self.rib = max(4, fs // 2), round(fs * 1.45), max(6, round(fs * 0.8))
        self.x0, self.x1 = self.pad, width - self.pad  # ribbon columns [x0, x1)
        self.colors = {t: {n: tuple(int(255 * c) for c in rgba[2::-1]) for n, rgba in class_colors(names).items()}
                       for t, names in vocab.items()}  # BGR uint8
        self.height = self.pad + len(tops) * (self.row + self.rib + self.pad) + self.row
        self.base = np.full((self.height, width, 3), 24, np.uint8)  # (P, W, 3) BGR, dark grey
        cols = np.arange(self.x1 - self.x0)
        frame_of_col = np.minimum(((cols + 0.5) * self.L / len(cols)).astype(np.int64), self.L - 1)
        for i, (task, (idx, _)) in enumerate(tops.items()):
            lut = np.array([self.colors[task][n] for n in vocab[task]], np.uint8)  # (K, 3)
            y = self._ribbon_y(i)
            self.base[y:y + self.rib, self.x0:self.x1] = lut[idx[frame_of_col]][None]  # nearest frame per column

    def _ribbon_y(self, i: int) -> int:
        return self.pad + i * (self.row + self.rib + self.pad) + self.row

    def draw(self, f: int) -> np.ndarray:
        """The panel of frame ``f``: ``(P, W, 3)`` uint8 BGR."""
        from PIL import Image, ImageDraw

        img = Image.fromarray(self.base.copy())  # BGR held in an "RGB" image: colours given as BGR
        d = ImageDraw.Draw(img)
        sw = self.font.size  # swatch side
        for i, (task, (idx, top)) in enumerate(self.tops.items()):
            y = self._ribbon_y(i) - self.row
            name = self.vocab[task][idx[f]]
            pct = f"{100 * float(top[f]):.0f}%"
            d.rectangle([self.pad, y + (self.row - sw) // 2, self.pad + sw, y + (self.row + sw) // 2],
                        fill=self.colors[task][name], outline=(235, 235, 235))
            room = self.x1 - self.pad - sw - self.pad - self.font.getlength(pct) - self.pad
            text = _fit(f"{task}: {name}", self.bold, room)
            d.text((2 * self.pad + sw, y + self.row // 2), text, font=self.bold, fill=(245, 245, 245), anchor="lm")
            d.text((self.x1, y + self.row // 2), pct, font=self.font, fill=_pct_color(float(top[f])), anchor="rm")
        y = self.height - self.row // 2 - self.pad // 2
        d.text((self.pad, y), f"frame {f} / {self.L - 1}", font=self.font, fill=(200, 200, 200), anchor="lm")
        d.text((self.x1, y), f"{f / self.fps:.2f} / {self.L / self.fps:.2f} s", font=self.font,
               fill=(200, 200, 200), anchor="rm")
        out = np.asarray(img).copy()
        x = self.x0 + int((f + 0.5) * (self.x1 - self.x0) / self.L)
        half = max(1, self.font.size // 12)
        for i in range(len(self.tops)):  # the cursor: white with dark edges, a little taller than the ribbon
            y0, y1 = self._ribbon_y(i) - 3, self._ribbon_y(i) + self.rib + 3
            out[y0:y1, max(0, x - half - 1):x + half + 2] = 0
            out[y0:y1, max(0, x - half):x + half + 1] = 255
        return out


def _fit(text: str, font, room: float) -> str:
    """``text`` cut with an ellipsis to fit ``room`` pixels."""
    if font.getlength(text) <= room:
        return text
    while text and font.getlength(text + "…") > room:
        text = text[:-1]
    return text + "…"


def _pct_color(p: float) -> tuple:
    """Green when sure, amber when unsure, red below one half (BGR)."""
    return (120, 220, 120) if p >= 0.8 else (60, 190, 250) if p >= 0.5 else (90, 90, 250)


def draw_pose(bgr: np.ndarray, keypoints: np.ndarray, edges: Sequence[tuple[int, int]], scale: int = 1) -> np.ndarray:
    """Draws one frame's skeleton (edges green, joints red) on ``bgr`` in place; missing joints are skipped.

    Shapes: bgr (H, W, 3) uint8 at ``scale`` times the video's size; keypoints (J', 3) x, y, score in video pixels.
    """
    if keypoints.ndim != 2 or keypoints.shape[1] != 3:
        raise ValueError(f"keypoints expected (J, 3), got {keypoints.shape}")
    ok = np.isfinite(keypoints).all(1) & (keypoints[:, 2] > 0)
    pts = np.round((np.nan_to_num(keypoints[:, :2]) + 0.5) * scale - 0.5).astype(np.int32)  # (J', 2)
    width = max(1, bgr.shape[1] // 300)
    for a, b in edges:
        if a < len(ok) and b < len(ok) and ok[a] and ok[b]:
            cv2.line(bgr, tuple(map(int, pts[a])), tuple(map(int, pts[b])), (0, 255, 0), width, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(bgr, tuple(map(int, pts[j])), width + 1, (0, 0, 255), -1, cv2.LINE_AA)
    return bgr


def write_overlay(video_path: str | Path, out_path: str | Path, probs: Mapping[str, np.ndarray],
                  vocab: Mapping[str, Sequence[str]], fps: float | None = None,
                  codecs: Sequence[str] | None = None, keypoints: np.ndarray | None = None,
                  edges: Sequence[tuple[int, int]] = ()) -> OverlayInfo:
    """Writes the overlay video of one video's predictions (atomically: a temporary file, then a rename).

    Args:
        video_path: the video the probabilities belong to (``L`` frames as ``probe_video`` counts them).
        out_path: where to write, e.g. ``<stem>.overlay.mp4``; the suffix becomes ``.webm`` when the
            encoder chosen writes WebM (see the returned ``path``).
        probs: ``{task: (L, K_task)}`` probabilities (rows sum to 1).
        vocab: ``{task: [class names]}`` in head order.
        fps: for the seconds shown (default: the video's); the output keeps the input's frame rate.
        codecs: preference order among "h264", "vp9", "vp8", "mpeg4" (default: that order).
        keypoints: ``(L, J', 3)`` x, y, score in video pixels, drawn with ``edges`` (the run's skeleton,
            every individual's: :meth:`kit.data.pose_formats.Skeleton.drawing_edges`); None = no poses.

    Returns:
        :class:`OverlayInfo`: the path written, the codec and encoder used, frames, fps and size.
    """
    video_path = Path(video_path)
    tops = top_labels(probs, vocab)
    L = len(next(iter(tops.values()))[0])
    meta = probe_video(video_path)
    if meta.num_frames != L:
        raise ValueError(f"{video_path} has {meta.num_frames} frames but the probabilities cover {L}: "
                         "pass the probabilities predicted for this video")
    rate = meta.fps or fps
    if not rate:
        raise ValueError(f"{video_path}: the container states no frame rate: pass fps")
    enc = pick_encoder(codecs)
    if enc.codec not in BROWSER_CODECS:
        log.warning(f"[warn] {video_path.name}'s overlay is MPEG-4 part 2 (the first codec of "
                    f"{list(codecs or DEFAULT_CODECS)} that works here), which browsers do not play (VLC does). "
                    "PyAV (pip install av) writes H.264.")
    path = Path(out_path).with_suffix(enc.suffix)
    cap = cv2.VideoCapture(str(video_path))
    try:
        ok, bgr = cap.read()
        if not ok:
            raise DataError.of([problem(video_path, "frame 0 does not decode", "re-encode the video")])
        h, w = bgr.shape[:2]  # of the decoded frame: rotation metadata may swap the header's size
        k = math.ceil(MIN_WIDTH / w) if w < MIN_WIDTH else 1
        W, Hv = w * k, h * k
        W += W % 2  # yuv420p needs even sizes
        panel = _Panel(tops, vocab, fps or rate, W)
        H = Hv + panel.height + (Hv + panel.height) % 2
        canvas = np.zeros((H, W, 3), np.uint8)  # (H, W, 3) BGR, reused for every frame
        with atomic_path(path, keep_suffix=True) as tmp:
            writer = _Writer(tmp, enc, W, H, rate)
            try:
                for f in range(L):
                    if f > 0:
                        ok, bgr = cap.read()
                        if not ok:
                            raise DataError.of([problem(video_path, f"frame {f} does not decode (the file is damaged "
                                                        "or ends early)", "re-encode the video")])
                    if k > 1:
                        bgr = cv2.resize(bgr, (w * k, Hv), interpolation=cv2.INTER_NEAREST)  # crisp pixels
                    if keypoints is not None:
                        draw_pose(bgr, keypoints[f], edges, k)
                    canvas[:Hv, :w * k] = bgr
                    canvas[Hv:Hv + panel.height] = panel.draw(f)
                    writer.write(canvas)
            except BaseException:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    writer.close()
                raise
            writer.close()
    finally:
        cap.release()
    return OverlayInfo(path, enc.codec, f"{enc.name} ({'PyAV' if enc.backend == 'pyav' else 'OpenCV'})",
                       L, float(rate), W, H)
