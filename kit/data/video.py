"""Frame-exact video decoding with OpenCV that reads only the frames asked for.

``read_frames(path, indices, size)`` seeks once to the first requested frame, then walks forward
with ``grab()`` and converts (``retrieve()``, resize, BGR -> RGB) only the requested frames. A
codec cannot skip frames between keyframes, so every frame from the seek point to the last
requested one is still decoded by FFmpeg (``frames_grabbed``); what the 3D path saves is the
conversion and resizing of the frames it does not use (``frames_decoded``), and whole stretches
of the file before the first requested frame (the seek). The seek itself decodes from the
keyframe before the target up to it inside FFmpeg; OpenCV does not expose that count, so
``frames_grabbed`` leaves it out (it is at most one keyframe interval per read).

Seeking is checked once per file (:func:`seek_is_exact`): a seek that lands on the wrong frame
(some AVI/MPEG-4 part 2 files, broken timestamps) switches that file to decoding from frame 0,
which is always exact. The frame count is the header's when the last frame it promises decodes
and nothing follows it, else a sequential count; metadata is cached in memory per
``path|size|mtime`` so a replaced file is probed again.

The other access pattern, one sequential pass over a whole video for feature extraction, is
:func:`kit.data.stream.iter_frames`; it shares this module's checks, errors and ``DECODE_STATS``.
Both shape frames with a :class:`~kit.data.resize.Resize` (an ``int`` size keeps
:func:`read_frames`' original square squash).

Bad input raises a :class:`DataError`; :func:`problem` and :func:`warning` make the rows of the
validation report it carries (``kit.data.validate``), with the OS's reason when a file cannot be read.

Legend: ``S`` frames requested, ``H = W = size``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from kit.data.resize import Resize
from kit.errors import KitError

# Counters of this process (DataLoader workers keep their own): reset, read, compare.
DECODE_STATS = dict(
    frames_grabbed=0,  # frames the codec decoded for read_frames: seek point .. last requested
    frames_decoded=0,  # distinct requested frames retrieved, resized and colour-converted
    frames_returned=0,  # frames returned, duplicates included (= sum of len(indices))
    seeks=0,  # CAP_PROP_POS_FRAMES seeks (0 when the read starts at frame 0)
    probe_frames=0,  # frames decoded once per file by probe_video / seek_is_exact / pyav_agrees
    iter_decoded=0,  # frames the codec returned to iter_frames (those before `start` included)
    iter_converted=0,  # frames iter_frames colour-converted (and resized) and yielded
    iter_pyav=0,  # iter_frames passes decoded with PyAV
    iter_opencv=0,  # iter_frames passes decoded with OpenCV
)
_META: dict[str, "VideoMeta"] = {}
_SEEK_EXACT: dict[str, bool] = {}
_LOADED: dict[str, str] = {}  # resolved path -> video_key when its records were loaded (note_loaded)
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")  # the files read as videos (suffix in any case)
SEEK_CHECK_FRAME = 90  # probe a seek this deep (or mid-video): past the first keyframe group of many encoders


class DataError(KitError, ValueError):
    """Bad input data; the message names the file, the line or column, and the fix.

    ``problems`` holds the same as dicts (file, row, column, problem, fix).
    """

    def __init__(self, message: str, problems: list[dict] | None = None):
        super().__init__(message)
        self.problems = problems or []

    @classmethod
    def of(cls, problems: list[dict]) -> "DataError":
        lines = []
        for p in problems:
            where = ", ".join([str(p["file"])] + [f"line {p['row']}"] * (p["row"] is not None)
                              + [f"column {p['column']!r}"] * (p["column"] is not None))
            lines.append(f"{where}: {p['problem']}. Fix: {p['fix']}.")
        if len(lines) == 1:  # one problem: one line, no list
            return cls(lines[0], problems)
        return cls(f"{len(problems)} problem(s) in the data:\n" + "\n".join(f"- {s}" for s in lines), problems)


class VideoMissing(DataError, FileNotFoundError):
    """A video that is gone (deleted or moved, e.g. after a run loaded its records)."""


class FrameRangeError(DataError, IndexError):
    """Frames requested past a video's end."""


def problem(file, problem: str, fix: str, row: int | None = None, column: str | None = None) -> dict:
    """One row of a validation report; ``row`` is a 1-based line number in ``file``."""
    return dict(file=str(file), row=None if row is None else int(row), column=column, problem=problem, fix=fix)


def tool_folders(data_root, videos, out, out_name: str, out_flag: str) -> tuple[Path, Path]:
    """``(videos folder, output folder)`` of a command that writes beside a dataset's videos (``poses``,
    ``import-labels``): ``<data_root>/Videos`` and ``<data_root>/<out_name>`` unless given explicitly.

    Raises:
        DataError: neither ``data_root`` nor both explicit folders are given.
    """
    root = Path(data_root) if str(data_root) else None
    if root is None and not (str(videos) and str(out)):
        raise DataError.of([problem("--data_root", "not given", f"pass --data_root (a folder with Videos/), or both "
                                    f"--videos and {out_flag}")])
    return (Path(videos) if str(videos) else root / "Videos"), (Path(out) if str(out) else root / out_name)


def warning(file, problem_: str, fix: str, row: int | None = None, column: str | None = None) -> dict:
    """A report row of level ``warning``: nothing is wrong enough to stop, but labels are lost."""
    return {**problem(file, problem_, fix, row, column), "level": "warning"}


@dataclass(frozen=True)
class VideoMeta:
    num_frames: int  # frames that decode (the header's count when it checks out)
    fps: float
    width: int
    height: int
    header_frames: int  # CAP_PROP_FRAME_COUNT as the container states it (may be an estimate)


def codec_frames(stats: dict | None = None) -> int:
    """Frames the codec decoded for the kit's reads (random access and sequential passes), probes aside."""
    stats = DECODE_STATS if stats is None else stats
    return stats["frames_grabbed"] + stats["iter_decoded"]


def converted_frames(stats: dict | None = None) -> int:
    """Frames colour-converted and resized for a backbone (random access and sequential passes)."""
    stats = DECODE_STATS if stats is None else stats
    return stats["frames_decoded"] + stats["iter_converted"]


def reset_decode_stats() -> None:
    for k in DECODE_STATS:
        DECODE_STATS[k] = 0


def video_key(path: str | Path) -> str:
    """``resolved path|size|mtime_ns``: changes whenever the file is replaced or edited."""
    p = Path(path).resolve()
    try:
        st = os.stat(p)
    except OSError:
        raise VideoMissing.of([problem(path, "video not found (deleted or moved after its records were loaded?)",
                                       "restore it, or reload the data (and restart the run)")]) from None
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def note_loaded(path: str | Path) -> None:
    """Remembers the file as it is now: :func:`read_frames` then refuses a changed file.

    ``kit.data.load_records`` calls it for every video it checks, so frame counts and labels
    never silently refer to a file that was replaced while a run used them.
    """
    key = video_key(path)
    _LOADED[key.split("|")[0]] = key


def _check_unchanged(path: Path) -> None:
    key = video_key(path)
    then = _LOADED.get(key.split("|")[0])
    if then is not None and then != key:
        raise DataError.of([problem(path, "the video changed after its records were loaded (its size or "
                                    "modification time differ): the frame count and labels checked then may not "
                                    "fit it", "restore the file, or reload the data (load_records) and start the "
                                    "run again")])


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DataError.of([_unopenable(path)])
    return cap


def _unopenable(path: Path) -> dict:
    """Why OpenCV cannot open ``path``: the OS's reason when there is one, else a damaged file."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except IsADirectoryError:
        return problem(path, "is a folder, not a video file", "move it out of the videos folder")
    except PermissionError:
        return problem(path, "cannot be read: permission denied", "make it readable (e.g. chmod a+r FILE)")
    except FileNotFoundError:
        return problem(path, "video not found (deleted or moved?)", "restore it, or reload the data")
    except OSError as e:
        return problem(path, f"cannot be read: {e.strerror or e}", "check the file and the disk it is on")
    return problem(path, "OpenCV/FFmpeg cannot open it as a video (not a video, or damaged: an MP4 cut short "
                   "loses its index)", "re-export or re-encode it (e.g. ffmpeg -i in -c:v libx264 out.mp4), or "
                   "remove it and its CSV")


def _os_reason(path: Path, e: OSError) -> str:
    if isinstance(e, IsADirectoryError) or path.is_dir():
        return "it is a folder, not a file"
    if isinstance(e, PermissionError):
        return "permission denied"
    return e.strerror or str(e)


def _os_fix(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "make it readable (e.g. chmod a+r FILE) or run as a user who may read it"
    if isinstance(e, IsADirectoryError):
        return "move the folder out, or put the file there instead"
    return "check the file and the disk it is on"


def probe_video(path: str | Path) -> VideoMeta:
    """Frame count, fps and size of a video; raises :class:`DataError` if it cannot be decoded."""
    path = Path(path)
    key = video_key(path)  # VideoMissing (a DataError) when the file is gone
    if key in _META:
        return _META[key]
    if path.stat().st_size == 0:
        raise DataError.of([problem(path, "empty file (0 bytes)", "copy the video again; the transfer "
                                    "or export did not finish")])
    cap = _open(path)
    try:
        header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        # Cheap check of the header: its last frame decodes and nothing follows.
        exact = header > 0 and cap.set(cv2.CAP_PROP_POS_FRAMES, header - 1) and cap.grab() and not cap.grab()
    finally:
        cap.release()
    n = header if exact else _count_frames(path)
    if n == 0:
        raise DataError.of([problem(path, "no frame decodes (damaged or truncated)", "re-export or "
                                    "re-encode the video, or remove it and its CSV")])
    meta = VideoMeta(n, fps, w, h, max(header, 0))
    _META[key] = meta
    return meta


def _count_frames(path: Path) -> int:
    cap = _open(path)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    DECODE_STATS["probe_frames"] += n
    return n


def seek_is_exact(path: str | Path) -> bool:
    """Whether seeking lands on the frame sequential decoding gives (checked once per file).

    Compares frames ``k`` and ``k + 1`` (``k = min(SEEK_CHECK_FRAME, L // 2)``) after a seek with
    the same frames decoded from the start. One spot, so a heuristic: it catches containers whose
    seeks are systematically off, not a file damaged at one place.
    """
    key = video_key(path)
    if key not in _SEEK_EXACT:
        n = probe_video(path).num_frames
        k = min(SEEK_CHECK_FRAME, n // 2)
        if k < 1:
            _SEEK_EXACT[key] = True  # too short to need a seek
        else:
            cap = _open(Path(path))
            for _ in range(k):
                cap.grab()
            ref = [cap.read()[1] for _ in range(2)]
            cap.release()
            cap = _open(Path(path))
            cap.set(cv2.CAP_PROP_POS_FRAMES, k)
            got = [cap.read()[1] for _ in range(2)]
            cap.release()
            DECODE_STATS["probe_frames"] += k + 4
            _SEEK_EXACT[key] = all(a is not None and b is not None and np.array_equal(a, b)
                                   for a, b in zip(ref, got))
    return _SEEK_EXACT[key]


def read_frames(path: str | Path, indices, size: int | Resize) -> torch.Tensor:
    """Exactly the frames ``indices`` of a video, RGB, shaped by ``size``.

    Args:
        path: the video file.
        indices: frame numbers (0-based), in any order, duplicates allowed.
        size: a :class:`Resize` (the geometry :func:`~kit.data.stream.iter_frames` applies too), or an int: both edges
            to ``size`` (OpenCV ``INTER_AREA``, the kit's original squash, = ``Resize(size, "squash",
            interpolation="area")``).

    Returns:
        uint8 tensor ``(S, 3, H, W)``, ``H = W = size`` (or ``size.size``), in the order of ``indices``.
    """
    path = Path(path)
    if not isinstance(size, (Resize, int, np.integer)) or isinstance(size, bool):
        raise TypeError(f"read_frames: size must be an int or a Resize, got {size!r}")
    side = size.size if isinstance(size, Resize) else int(size)
    idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1).tolist()
    if not idx:
        return torch.zeros(0, 3, side, side, dtype=torch.uint8)
    _check_unchanged(path)
    n = probe_video(path).num_frames
    if min(idx) < 0 or max(idx) >= n:
        raise FrameRangeError(f"{path}: frames {min(idx)}..{max(idx)} requested, the video has 0..{n - 1} (if it "
                              "changed since its records were loaded, reload the data)")
    wanted = sorted(set(idx))
    start = wanted[0] if wanted[0] > 0 and seek_is_exact(path) else 0
    cap = _open(path)
    got = {}
    try:
        if start > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            DECODE_STATS["seeks"] += 1
        pos = start
        for f in wanted:
            while pos <= f:  # decode forward; the codec cannot skip frames anyway
                if not cap.grab():
                    raise DataError.of([problem(path, f"frame {pos} does not decode (the file is damaged or "
                                                "ends early)", "re-encode the video, or remove it and its CSV")])
                pos += 1
                DECODE_STATS["frames_grabbed"] += 1
            ok, bgr = cap.retrieve()
            if not ok:
                raise DataError.of([problem(path, f"frame {f} does not decode", "re-encode the video")])
            got[f] = size(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)) if isinstance(size, Resize) else _to_rgb(bgr, size)
            DECODE_STATS["frames_decoded"] += 1
    finally:
        cap.release()
    DECODE_STATS["frames_returned"] += len(idx)
    out = np.stack([got[i] for i in idx])  # (S, H, W, 3)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (S, 3, H, W)


def _to_rgb(bgr: np.ndarray, size: int) -> np.ndarray:
    """``(h, w, 3)`` BGR -> ``(size, size, 3)`` RGB. Resizing first: the swap is then cheaper."""
    if bgr.shape[:2] != (size, size):
        shrink = bgr.shape[0] > size or bgr.shape[1] > size
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
