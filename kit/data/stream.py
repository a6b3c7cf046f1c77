"""One sequential decode pass per video: every frame in order, each decoded once (feature extraction).

:func:`iter_frames` is the access pattern beside :func:`kit.data.video.read_frames`' random access:
one pass over a whole video (or a stretch of it), the generator holding one frame at a time. It
decodes with PyAV (frame threads; YUV -> RGB by swscale, bit-identical to OpenCV's conversion) when
PyAV is installed and agrees with OpenCV on the file (:func:`pyav_agrees`), else with OpenCV.

Why both: PyAV's frame threads decode 1080p frames about twice as fast as OpenCV (small frames about
the same), but OpenCV is the reference, since :func:`kit.data.video.probe_video` counts frames, and
labels are checked against that count, with OpenCV. So PyAV is used only where it gives OpenCV's
frames: a file it decodes differently (checked once on its frame count and first frames, and by
the count of every pass) is decoded with OpenCV, and a pass that ends with a different count raises. Either way
the pass gives exactly the frames, and the number of frames, of OpenCV's sequential decoding.

Legend: ``S = resize.size``; ``h, w`` a frame's decoded height and width.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from kit.data.resize import Resize
from kit.data.video import DECODE_STATS, DataError, _check_unchanged, _open, probe_video, problem, video_key
from kit.log import log

_AV_AGREES: dict[str, bool] = {}
AV_CHECK_FRAMES = 3  # leading frames pyav_agrees compares with OpenCV, pixel for pixel
BACKENDS = ("auto", "pyav", "opencv")


def iter_frames(path: str | Path, resize: Resize | None = None, start: int = 0, stop: int | None = None,
                backend: str = "auto", keep: Callable[[int], bool] | None = None) -> Iterator[np.ndarray | None]:
    """Frames ``start .. stop - 1`` of a video in order, from ONE sequential decoding pass.

    Each frame is decoded once and the generator holds one frame at a time (memory does not grow
    with the video). Frames before ``start`` are decoded (a codec cannot skip them) but neither
    converted nor resized: decoding from frame 0 is exact on every file, a seek is not.

    Args:
        path: the video file.
        resize: the geometry of each frame (:class:`Resize`); None gives the decoded frames, full size.
        start: the first frame (0-based).
        stop: one past the last frame; None = the end of the video.
        backend: ``auto`` (PyAV when installed and :func:`pyav_agrees` on this file, else OpenCV),
            ``pyav`` or ``opencv``.
        keep: ``frame index -> bool``; frames it rejects are decoded and counted but yielded as
            None, neither colour-converted nor resized (extraction's clips use every
            ``frame_step``-th frame: converting the others is wasted). None keeps every frame.

    Returns:
        an iterator of uint8 RGB frames ``(h, w, 3)``, or ``(S, S, 3)`` with ``resize`` (None for
        frames ``keep`` rejects). File
        problems (missing, empty, not a video, range) raise here, before the first frame.

    Raises:
        DataError: the file cannot be decoded; or, during the pass, PyAV decodes a different number
            of frames than OpenCV (the file is then marked, and ``auto`` uses OpenCV for it from
            the next call on).

    Example:
        >>> for rgb in iter_frames("a.mp4", Resize(224)):  # doctest: +SKIP
        ...     clip.append(rgb)  # (224, 224, 3) uint8
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise ValueError(f"iter_frames: backend must be one of {BACKENDS}, got {backend!r}")
    if resize is not None and not isinstance(resize, Resize):
        raise TypeError(f"iter_frames: resize must be a kit.data.video.Resize or None, got {resize!r}")
    _check_unchanged(path)
    n = probe_video(path).num_frames
    stop = n if stop is None else int(stop)
    if not 0 <= int(start) <= stop <= n:
        raise IndexError(f"{path}: frames {start}..{stop} (stop exclusive) requested, the video has 0..{n - 1}")
    if backend == "pyav" and _import_av() is None:
        raise ImportError("iter_frames(backend='pyav') needs PyAV: pip install 'av>=12' (or use backend='auto')")
    use_av = backend == "pyav" or (backend == "auto" and pyav_agrees(path))
    return (_iter_pyav if use_av else _iter_opencv)(path, resize, int(start), stop, n, keep or _every)


def _every(i: int) -> bool:
    return True


def pyav_agrees(path: str | Path) -> bool:
    """Whether PyAV decodes this file as OpenCV does (checked once per file, without a full pass).

    PyAV's frame count (the container's, else its packets) must equal :func:`probe_video`'s, and the
    first :data:`AV_CHECK_FRAMES` frames must be pixel-identical (catches a different colour
    conversion, rotation, or a shifted start). A heuristic for order, like
    :func:`~kit.data.video.seek_is_exact`; :func:`iter_frames` also counts every frame of each pass.
    """
    if _import_av() is None:
        return False
    key = video_key(path)
    if key not in _AV_AGREES:
        why = _pyav_disagreement(Path(path), probe_video(path).num_frames)
        if why:
            log.warning(f"[warn] {path}: {why}; decoding it with OpenCV")
        _AV_AGREES[key] = not why
    return _AV_AGREES[key]


def _import_av():
    try:
        import av
    except ImportError:
        return None
    return av


def _pyav_disagreement(path: Path, n: int) -> str:
    """Why PyAV cannot stand in for OpenCV on this file ("" when it can)."""
    av = _import_av()
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return "PyAV finds no video stream"
            s = c.streams.video[0]
            count = s.frames or sum(1 for p in c.demux(s) if p.size)
        if count != n:
            return f"PyAV counts {count} frames, OpenCV decodes {n}"
        k = min(AV_CHECK_FRAMES, n)
        with av.open(str(path)) as c:
            got = [f.to_ndarray(format="rgb24") for f in itertools.islice(c.decode(c.streams.video[0]), k)]
    except av.error.FFmpegError as e:
        return f"PyAV cannot decode it ({e})"
    cap = _open(path)
    ref = [cap.read()[1] for _ in range(k)]
    cap.release()
    DECODE_STATS["probe_frames"] += 2 * k
    same = len(got) == k and all(r is not None and np.array_equal(g, cv2.cvtColor(r, cv2.COLOR_BGR2RGB))
                                 for g, r in zip(got, ref))
    return "" if same else f"PyAV's first {k} frames differ from OpenCV's"


def _iter_pyav(path: Path, resize: Resize | None, start: int, stop: int, n: int,
               keep: Callable[[int], bool]) -> Iterator[np.ndarray | None]:
    av = _import_av()
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise DataError.of([problem(path, f"PyAV cannot open it ({e})", "re-encode the video, or pass "
                                    "backend='opencv'")]) from None
    DECODE_STATS["iter_pyav"] += 1
    decoded = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: the same frames, about 2x faster at 1080p on 2 cores
        # One reformatter for the pass: frame.to_ndarray() builds a new swscale context per frame
        # (+1.2 ms a 1080p frame, +0.5 ms at 340x256); the pixels are the same.
        to_rgb = av.video.reformatter.VideoReformatter()
        frames = container.decode(stream)
        for i, frame in enumerate(itertools.islice(frames, stop)):
            DECODE_STATS["iter_decoded"] += 1
            decoded = i + 1
            if i >= start and not keep(i):
                yield None
            elif i >= start:
                rgb = to_rgb.reformat(frame, format="rgb24").to_ndarray()  # (h, w, 3): OpenCV's conversion
                rgb = np.ascontiguousarray(rgb)  # rows may be padded (340 px: 1056 bytes): as OpenCV's arrays
                DECODE_STATS["iter_converted"] += 1
                yield rgb if resize is None else resize(rgb)
        # A pass to the end also checks that nothing follows frame n - 1.
        if decoded == stop and (stop < n or next(frames, None) is None):
            return
    except av.error.FFmpegError as e:
        raise DataError.of([problem(path, f"frame {decoded} does not decode with PyAV ({e})", "re-encode the "
                                    "video, or pass backend='opencv'")]) from None
    finally:
        container.close()
    _AV_AGREES[video_key(path)] = False
    got = f"more than {n}" if decoded == n else f"{decoded}"
    raise DataError.of([problem(path, f"PyAV decodes {got} frames where OpenCV decodes {n}; the frames of this "
                                "pass are not to be used", "run it again: iter_frames now decodes this file with "
                                "OpenCV (or pass backend='opencv')")])


def _iter_opencv(path: Path, resize: Resize | None, start: int, stop: int, n: int,
                 keep: Callable[[int], bool]) -> Iterator[np.ndarray | None]:
    cap = _open(path)
    DECODE_STATS["iter_opencv"] += 1
    try:
        for i in range(stop):
            ok, bgr = (cap.grab(), None) if i < start or not keep(i) else cap.read()  # grab: decode, no copy out
            if not ok:
                raise DataError.of([problem(path, f"frame {i} does not decode (the file is damaged or ends "
                                            "early)", "re-encode the video, or remove it and its CSV")])
            DECODE_STATS["iter_decoded"] += 1
            if i >= start and bgr is None:
                yield None
            elif i >= start:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # (h, w, 3)
                DECODE_STATS["iter_converted"] += 1
                yield rgb if resize is None else resize(rgb)
    finally:
        cap.release()
