"""Which frames a model looks at: 16-frame uniform sampling and window plans.

Legend: ``L`` frames in a video, ``T`` frames in a window, ``n`` frames sampled from a window.

A *window* is ``T`` consecutive frames starting at ``start``; frames past the end of the video
are padding, marked ``False`` in the window's mask. Training draws windows from a fixed grid of
starts (so a frozen backbone's features can be cached and reused every epoch); evaluation uses
windows that together cover every frame of the video.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from kit.data.contract import VideoRecord
from kit.data.labels import IGNORE_INDEX, encode_labels
from kit.data.resize import Resize  # noqa: F401  (a type in a signature)
from kit.data.video import read_frames, video_key


def uniform_indices(T: int, n: int = 16) -> torch.Tensor:
    """``n`` frame positions spread evenly over a window of ``T`` frames, ends included.

    Exactly ``torch.linspace(0, T - 1, n).long()`` (truncation, not rounding), as the seed
    computes it. For ``T < n`` positions repeat rather than fail.

    Example:
        >>> uniform_indices(180).tolist()[:4]
        [0, 11, 23, 35]
        >>> uniform_indices(4, 8).tolist()
        [0, 0, 0, 1, 1, 2, 2, 3]
    """
    if T < 1 or n < 1:
        raise ValueError(f"uniform_indices needs T >= 1 and n >= 1, got T={T}, n={n}")
    return torch.linspace(0, T - 1, n).long()


@dataclass(frozen=True)
class Window:
    """``T`` frames of video ``video`` (an index into the dataset's video list) from ``start``."""

    video: int
    start: int
    T: int

    def frames(self, length: int) -> torch.Tensor:
        """Absolute frame index of each window position, ``-1`` where it is padding. ``(T,)``

        A window may start before the video (a jittered window, ``start < 0``) or end after it.
        """
        idx = torch.arange(self.start, self.start + self.T)
        return torch.where((idx >= 0) & (idx < length), idx, torch.full_like(idx, -1))

    def decoded(self, positions: torch.Tensor, length: int) -> torch.Tensor:
        """Absolute frames to decode for window ``positions`` ``(S,)``; padding reads the nearest real frame."""
        return (self.start + positions).clamp(min=0, max=length - 1)

    def mask(self, length: int) -> torch.Tensor:
        """``True`` for real frames, ``False`` for padding outside a ``length``-frame video. ``(T,)``"""
        return window_mask(self.start, self.T, length)


def window_mask(start: int, T: int, length: int) -> torch.Tensor:
    """Boolean ``(T,)`` mask: position ``t`` is real when ``0 <= start + t < length``."""
    idx = torch.arange(start, start + T)
    return (idx >= 0) & (idx < length)


def grid_starts(length: int, T: int, stride: int) -> list[int]:
    """Starts ``0, stride, 2*stride, ...`` plus one window ending on the last frame.

    ``stride`` is capped at ``T``: windows never leave frames out.

    Every frame of a ``length``-frame video falls in at least one window. A video shorter than
    ``T`` gets a single window at 0 (padded).
    """
    if T < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got T={T}, stride={stride}")
    if length <= T:
        return [0]
    starts = list(range(0, length - T + 1, min(stride, T)))  # a stride above T would leave gaps
    if starts[-1] != length - T:
        starts.append(length - T)
    return starts


def train_windows(lengths: list[int], T: int, stride: int) -> list[Window]:
    """The fixed training grid over every video (shuffle it per epoch with ``shuffled``)."""
    return [Window(v, s, T) for v, L in enumerate(lengths) for s in grid_starts(L, T, stride)]


def eval_windows(lengths: list[int], T: int, stride: int | None = None) -> list[Window]:
    """Windows that cover every frame of every video; ``stride`` defaults to ``T // 2`` (overlap)."""
    return train_windows(lengths, T, stride or max(1, T // 2))


def shuffled(windows: list[Window], seed: int, epoch: int) -> list[Window]:
    """A permutation of ``windows`` that depends only on ``(seed, epoch)``."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return [windows[i] for i in torch.randperm(len(windows), generator=g).tolist()]


def jittered(windows: list[Window], lengths: list[int], seed: int, epoch: int) -> list[Window]:
    """Random windows (no cache possible then): each grid window moved to a random start.

    Starts are uniform over ``[-(T - 1), L - 1]``, so every frame of a video is equally likely to be
    in a window (``T / (L + T - 1)``); the part outside the video is padding, masked. Starts in
    ``[0, L - T]`` only would almost never train the first and last frames.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch + 7)
    out = []
    for w in windows:
        L = lengths[w.video]
        out.append(Window(w.video, int(torch.randint(-(w.T - 1), L, (1,), generator=g)), w.T))
    return out


# --- window datasets ----------------------------------------------------------------------------
class WindowDataset(torch.utils.data.Dataset):
    """Windows of ``T`` frames with labels, keypoints and the decoded frames a backbone needs.

    Args:
        records: the videos; ``Window.video`` indexes this list.
        vocab: ``{task: class names}``; labels outside it become ``IGNORE_INDEX``.
        windows: from ``kit.data.windows`` (train_windows / eval_windows).
        positions: ``T -> (S,)`` window positions to decode (``Backbone.sample_positions``);
            default ``uniform_indices(T)``.
        img_size: the geometry decoded frames get: a :class:`kit.data.video.Resize` (a backbone's
            ``resize``), or an int ``n`` to stretch them to ``n x n``.
        decode: ``"sampled"`` decodes the ``S`` positions only, ``"all"`` every one of the ``T``
            frames, ``"none"`` no video (``video`` is ``(0, 3, H, W)``; cached features).

    Items: video (S, 3, H, W) uint8, video_pos (S,), video_frames (S,) absolute (padding clamped to
    the last frame), pose (T, J, 3), has_pose (), labels {task: (T,)}, mask (T,) bool, frames (T,)
    absolute or -1, video_id, start, window, cache_key.
    """

    def __init__(self, records: list[VideoRecord], vocab: dict[str, list[str]], windows: list[Window],
                 positions: Callable[[int], torch.Tensor] | None = None, img_size: "int | Resize" = 224,
                 decode: str = "sampled"):
        if decode not in ("sampled", "all", "none"):
            raise ValueError(f"decode must be 'sampled', 'all' or 'none', got {decode!r}")
        self.records, self.vocab, self.windows = records, vocab, list(windows)
        self.positions, self.img_size, self.decode = positions or uniform_indices, img_size, decode
        self.num_joints = next((r.keypoints.shape[1] for r in records if r.keypoints is not None), 17)
        self._labels = [{t: encode_labels(r.labels.get(t), vocab[t], r.num_frames) for t in vocab} for r in records]
        self._keys: dict[Path, str] = {}

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict:
        w = self.windows[i]
        rec = self.records[w.video]
        frames = w.frames(rec.num_frames)  # (T,) absolute, -1 = padding
        mask = frames >= 0
        src = frames.clamp(min=0).numpy()
        pos = torch.arange(w.T) if self.decode == "all" else torch.as_tensor(self.positions(w.T)).long()
        if len(pos) and (pos.min() < 0 or pos.max() >= w.T):
            raise ValueError(f"positions({w.T}) returned {pos.tolist()}: must lie in 0..{w.T - 1}")
        video_frames = w.decoded(pos, rec.num_frames)  # (S,)
        if self.decode == "none":
            side = getattr(self.img_size, "size", self.img_size)
            video = torch.zeros(0, 3, side, side, dtype=torch.uint8)
        else:
            video = read_frames(rec.video_path, video_frames, self.img_size)  # (S, 3, H, W)
        pose = torch.zeros(w.T, self.num_joints, 3)
        if rec.keypoints is not None:
            pose[mask] = torch.from_numpy(rec.keypoints[src[mask.numpy()]])  # (T_real, J, 3)
        labels = {t: torch.from_numpy(np.where(mask.numpy(), lab[src], IGNORE_INDEX))
                  for t, lab in self._labels[w.video].items()}
        if rec.video_path not in self._keys:
            self._keys[rec.video_path] = video_key(rec.video_path)
        return dict(video=video, video_pos=pos, video_frames=video_frames, pose=pose,
                    has_pose=torch.tensor(rec.keypoints is not None), labels=labels, mask=mask,
                    frames=frames, video_id=rec.stem, start=w.start, window=i,
                    cache_key=self._keys[rec.video_path])


def collate(batch: list[dict]) -> dict:
    """Stacks items: tensors gain a leading ``B``, labels become ``{task: (B, T)}``, strings lists."""
    out = {}
    for k, v in batch[0].items():
        if k == "labels":
            out[k] = {t: torch.stack([b[k][t] for b in batch]) for t in v}
        elif isinstance(v, torch.Tensor):
            out[k] = torch.stack([b[k] for b in batch])  # e.g. video (B, S, 3, H, W), pose (B, T, J, 3)
        elif isinstance(v, int):
            out[k] = torch.tensor([b[k] for b in batch])
        else:
            out[k] = [b[k] for b in batch]
    return out
