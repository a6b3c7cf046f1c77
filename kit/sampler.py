"""Which frames a model looks at: 16-frame uniform sampling and window plans.

Legend: ``L`` frames in a video, ``T`` frames in a window, ``n`` frames sampled from a window.

A *window* is ``T`` consecutive frames starting at ``start``; frames past the end of the video
are padding, marked ``False`` in the window's mask. Training draws windows from a fixed grid of
starts (so a frozen backbone's features can be cached and reused every epoch); evaluation uses
windows that together cover every frame of the video.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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
        """Absolute frame index of each window position, ``-1`` where it is padding. ``(T,)``"""
        idx = torch.arange(self.start, self.start + self.T)
        return torch.where(idx < length, idx, torch.full_like(idx, -1))

    def decoded(self, positions: torch.Tensor, length: int) -> torch.Tensor:
        """Absolute frames to decode for window ``positions`` ``(S,)``; padding reads the last frame."""
        return (self.start + positions).clamp(max=length - 1)

    def mask(self, length: int) -> torch.Tensor:
        """``True`` for real frames, ``False`` for padding past the end of a ``length`` video. ``(T,)``"""
        return window_mask(self.start, self.T, length)


def window_mask(start: int, T: int, length: int) -> torch.Tensor:
    """Boolean ``(T,)`` mask: position ``t`` is real when ``start + t < length``."""
    return torch.arange(start, start + T) < length


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
    """Random windows: each grid window moved to a random start (no cache possible then)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch + 7)
    out = []
    for w in windows:
        hi = max(0, lengths[w.video] - w.T)
        out.append(Window(w.video, int(torch.randint(0, hi + 1, (1,), generator=g)), w.T))
    return out
