"""Feature cache for frozen backbones: decode and embed each window once, reuse it every epoch.

A cached entry is the backbone's compact output ``Backbone.embed(frames) -> (K, D)`` for one
window (K = 1, 8 or a few clip vectors: small). Its key hashes everything that could change it:

- the backbone's ``fingerprint`` (identity, weights source, preprocessing, visual mode, sizes),
- the video file (resolved path, size in bytes, modification time),
- the absolute frame indices the backbone reads.

Change any of them and the entry is simply not found, so it is recomputed; nothing is ever
served stale. Entries live in memory and, when a folder is given, on disk
(``<output_dir>/.feature_cache/<fingerprint hash>/``) so a resumed run or a second run with the
same backbone starts warm. Training windows come from a fixed grid (``kit.data.windows``) precisely so
that the cache hits from the second epoch on.

An entry on disk that cannot be read (truncated by a full disk or a killed process, another
backbone's, not a checkpoint at all) is a miss: the cache is the kit's own, so that file is
removed, the window recomputed, and one warning says so.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from kit.files import load_checkpoint, save_checkpoint

log = logging.getLogger("kit")


class FeatureCache:
    """Maps (video, frame indices) to backbone features for one backbone fingerprint.

    Example:
        >>> cache = FeatureCache("tiny|64|tokens")            # memory only
        >>> key = cache.key("/v/a.mp4|10|1", torch.tensor([0, 5, 9]))
        >>> cache.get(key) is None
        True
    """

    def __init__(self, fingerprint: str, directory: str | Path | None = None):
        self.fingerprint = fingerprint
        digest = hashlib.sha1(fingerprint.encode()).hexdigest()[:16]
        self.dir = Path(directory) / digest if directory else None
        self._mem: dict[str, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0
        self.removed = 0  # unreadable entries dropped from disk

    def key(self, video: str, frames: torch.Tensor) -> str:
        """``video`` is ``kit.data.video.video_key(path)``; ``frames`` the absolute indices decoded ``(S,)``."""
        text = f"{self.fingerprint}\n{video}\n{','.join(map(str, frames.tolist()))}"
        return hashlib.sha1(text.encode()).hexdigest()

    def __contains__(self, key: str) -> bool:
        """Whether ``get(key)`` will return features (a disk entry is read, and dropped if unreadable)."""
        if key in self._mem:
            return True
        value = self._load(key)
        if value is not None and torch.utils.data.get_worker_info() is None:
            self._mem[key] = value  # a DataLoader worker's copy would only cost memory
        return value is not None

    def get(self, key: str) -> torch.Tensor | None:
        value = self._mem.get(key)
        if value is None:
            value = self._load(key)
            if value is not None:
                self._mem[key] = value
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def _load(self, key: str) -> torch.Tensor | None:
        """The entry on disk, or None: absent, or unreadable (then removed, with a warning)."""
        if self.dir is None:
            return None
        path = self.dir / f"{key}.pt"
        if not path.is_file():
            return None
        try:
            state = load_checkpoint(path)
            value = state["features"]
            if not isinstance(value, torch.Tensor) or state.get("fingerprint", self.fingerprint) != self.fingerprint:
                raise ValueError("not a feature entry of this backbone")
        except Exception as e:  # noqa: BLE001 - any unreadable entry is recomputed, never fatal
            self._drop(path, e)
            return None
        return value

    def _drop(self, path: Path, error: Exception) -> None:
        path.unlink(missing_ok=True)
        self.removed += 1
        if self.removed == 1:  # once per cache: a damaged cache folder would otherwise flood the log
            reason = str(error.__cause__ or error).strip().splitlines()[0][:160]
            log.warning(f"[warn] feature cache: unreadable entry {path} ({type(error.__cause__ or error).__name__}: "
                        f"{reason}) removed and recomputed; further broken entries are handled the same way silently")

    def put(self, key: str, features: torch.Tensor) -> None:
        """Stores finite features; NaN/inf ones (an fp16 overflow, say) are never cached."""
        features = features.detach().to("cpu", torch.float32).contiguous()
        if not torch.isfinite(features).all():
            return
        self._mem[key] = features
        if self.dir is not None:
            save_checkpoint(self.dir / f"{key}.pt", {"features": features, "fingerprint": self.fingerprint})

    def __len__(self) -> int:
        return len(self._mem)
