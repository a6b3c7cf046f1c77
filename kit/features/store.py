"""The feature store: per-frame features of whole videos, in the layout MS-TCN and its successors read.

One store holds one backbone's features of one dataset's videos::

    <output_dir>/features/<dataset>-<hash>/<backbone fingerprint>/
        manifest.json     the backbone (source, weights identity, preprocessing, clip geometry, mode,
                          fingerprint), dtype, kit and feature-format versions
        <stem>.npy        float16 (or float32) array (D, L): one column per frame, as MS-TCN's
                          features/<vid>.npy; a plain np.load reads it
        <stem>.json       the video it came from (path, size, modification time), frames, fps, size,
                          shape, dtype, the precision it was computed in (fp32 on a CPU, the run's
                          mixed precision on a GPU): written after the .npy, so its presence means "complete"

A video's features are *current* when both files exist, the sidecar's video key (resolved path,
size, modification time) matches the file on disk now, the .npy header has the shape the sidecar
says and the file is as long as that header promises (a file cut short is redone). Anything else
is recomputed; nothing else is ever read. Arrays are written to a hidden
temporary name and renamed, so a killed extraction never leaves a file that looks complete.

Checking a store never opens a video (only ``os.stat``) and never builds a backbone: evaluation and
prediction on extracted features start in the time it takes to read the head's checkpoint.

Legend: ``D`` feature width, ``L`` frames in a video.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

import kit
from kit.data.video import VideoMeta, video_key
from kit.errors import DataFileError
from kit.files import read_json, write_json

log = logging.getLogger("kit")

STORE_FORMAT = 1  # the layout of this folder; bump when it changes


def dataset_id(videos_dir: str | Path) -> str:
    """``<name>-<hash of the resolved folder>``: one store per dataset, readable and unique."""
    folder = Path(videos_dir).resolve()
    name = folder.parent.name if folder.name == "Videos" else folder.name
    return f"{name or 'videos'}-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"


class FeatureStore:
    """The features of one backbone for one dataset's videos.

    Example:
        >>> store = FeatureStore(tmp / "features" / "demo-1234abcd" / "tiny-tokens-64px-16f-s1-...")  # doctest: +SKIP
        >>> store.is_current(record), store.load(record.stem).shape  # doctest: +SKIP
        (True, (64, 243))
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def at(cls, output_dir: str | Path, videos_dir: str | Path, key: str) -> "FeatureStore":
        """The store of the backbone with fingerprint ``key`` for the videos in ``videos_dir``."""
        return cls(Path(output_dir) / "features" / dataset_id(videos_dir) / key)

    # --- the manifest --------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict:
        """The store's manifest ({} when the store has none yet).

        A damaged manifest (empty, not JSON: a full disk, a copy that stopped) makes the whole store
        untrustworthy: it is moved aside as ``manifest.json.damaged-<time>`` with one warning, and the
        store is treated as new, so every video's features are checked against its sidecar and
        extracted again where that does not match (nothing is deleted).
        """
        if not self.manifest_path.is_file():
            return {}
        try:
            have = read_json(self.manifest_path)
            if not isinstance(have, dict):
                raise DataFileError(f"{self.manifest_path}: holds a {type(have).__name__}, not the manifest")
            return have
        except DataFileError as e:
            aside = self.manifest_path.with_name(f"manifest.json.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            self.manifest_path.rename(aside)
            log.warning(f"[warn] {e}; moved it to {aside.name} and rebuilding the store: features whose sidecar "
                        "does not match are extracted again")
            return {}

    def init(self, backbone: dict, dtype: str) -> None:
        """Creates the folder and its manifest; an existing store must describe the same backbone."""
        want = {"store_format": STORE_FORMAT, "kit_version": kit.__version__, "backbone": backbone,
                "fingerprint": backbone["fingerprint"], "dtype": dtype}
        have = self.manifest()
        if have and (have.get("fingerprint"), have.get("store_format")) != (want["fingerprint"], STORE_FORMAT):
            raise ValueError(f"{self.manifest_path} describes other features ({have.get('fingerprint')}, format "
                             f"{have.get('store_format')}) than this backbone's ({want['fingerprint']}, format "
                             f"{STORE_FORMAT}): move the folder away and extract again")
        if not have:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json(self.manifest_path, want | {"created": time.strftime("%Y-%m-%d %H:%M:%S %z")})

    # --- one video -------------------------------------------------------------------------------
    def path(self, stem: str) -> Path:
        return self.root / f"{stem}.npy"

    def sidecar(self, stem: str) -> Path:
        return self.root / f"{stem}.json"

    def info(self, stem: str) -> dict | None:
        """The sidecar of a video, or None."""
        try:
            return read_json(self.sidecar(stem))
        except (OSError, ValueError):
            return None

    def is_current(self, stem: str, video_path: str | Path) -> bool:
        """Whether ``<stem>.npy`` holds complete features of the video file as it is now (no video opened)."""
        info = self.info(stem)
        if info is None:
            return False
        try:
            if info.get("video_key") != video_key(video_path):
                return False
            shape, size = _npy_shape(self.path(stem))
        except (OSError, ValueError):
            return False
        return list(shape) == list(info.get("shape", [])) and self.path(stem).stat().st_size == size

    def meta(self, stem: str) -> VideoMeta | None:
        """The video's frame count, fps and size as recorded at extraction (saves probing it again)."""
        info = self.info(stem)
        if info is None:
            return None
        return VideoMeta(info["num_frames"], info["fps"], info["width"], info["height"], info.get("header_frames", 0))

    def load(self, stem: str, mmap: bool = True) -> np.ndarray:
        """The ``(D, L)`` array (memory-mapped by default: nothing is read until used)."""
        return np.load(self.path(stem), mmap_mode="r" if mmap else None, allow_pickle=False)

    def partial(self, stem: str) -> Path:
        """Where an extraction writes before renaming: hidden, never read as features."""
        return self.root / f".{stem}.npy.partial"

    def commit(self, stem: str, info: dict) -> None:
        """Renames the finished partial array into place, then writes the sidecar (the "complete" mark)."""
        tmp = self.partial(stem)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        self.sidecar(stem).unlink(missing_ok=True)  # stale sidecar first: never a new array with an old sidecar
        os.replace(tmp, self.path(stem))
        write_json(self.sidecar(stem), info)

    def stems(self) -> list[str]:
        """Videos with a sidecar in this store."""
        return sorted(p.stem for p in self.root.glob("*.json") if p.name != "manifest.json")


def _npy_shape(path: Path) -> tuple[tuple[int, ...], int]:
    """The shape in a .npy header and the file size it implies, without reading the array."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        header = f.tell()
    return tuple(shape), header + int(np.prod(shape)) * dtype.itemsize


def write_info(stem: str, video_path: str | Path, meta: VideoMeta, shape: tuple[int, int], dtype: str,
               **extra) -> dict:
    """The sidecar of one extracted video."""
    return {"stem": stem, "video": str(Path(video_path).resolve()), "video_key": video_key(video_path),
            "num_frames": meta.num_frames, "fps": meta.fps, "width": meta.width, "height": meta.height,
            "header_frames": meta.header_frames, "shape": list(shape), "dtype": dtype, **extra}
