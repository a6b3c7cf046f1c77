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
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from kit.files import load_checkpoint, save_checkpoint


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

    def key(self, video: str, frames: torch.Tensor) -> str:
        """``video`` is ``kit.data.video.video_key(path)``; ``frames`` the absolute indices decoded ``(S,)``."""
        text = f"{self.fingerprint}\n{video}\n{','.join(map(str, frames.tolist()))}"
        return hashlib.sha1(text.encode()).hexdigest()

    def __contains__(self, key: str) -> bool:
        return key in self._mem or (self.dir is not None and (self.dir / f"{key}.pt").is_file())

    def get(self, key: str) -> torch.Tensor | None:
        value = self._mem.get(key)
        if value is None and self.dir is not None and (self.dir / f"{key}.pt").is_file():
            value = load_checkpoint(self.dir / f"{key}.pt")["features"]
            self._mem[key] = value
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

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
