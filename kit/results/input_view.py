"""Figures of what a model sees: which frames of a window it samples, those frames, their skeletons,
and the norms of the backbone's patch tokens (notebooks 01 and 02).

Every function returns a ``matplotlib.figure.Figure`` and takes ``save=PATH`` / ``run_dir=RUN`` as
:mod:`kit.results.plots` does, whose helpers draw them.

Legend: ``S`` sampled frames, ``T`` frames in a window, ``T'`` token time steps, ``h, w`` patch
grid, ``D`` token width, ``J`` joints.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from kit.data.windows import uniform_indices
from kit.results.plots import UNLABELED, _figure, _finish, _to_numpy
from kit.temporal.model import COCO17_EDGES


def _as_hwc(frames) -> np.ndarray:
    """``(S, 3, H, W)`` or ``(S, H, W, 3)`` -> ``(S, H, W, 3)`` uint8."""
    f = _to_numpy(frames)
    if f.ndim != 4 or 3 not in (f.shape[1], f.shape[-1]):
        raise ValueError(f"frames must be (S, 3, H, W) or (S, H, W, 3), got shape {tuple(f.shape)}")
    if f.shape[-1] != 3:
        f = f.transpose(0, 2, 3, 1)  # (S, H, W, 3)
    if f.dtype != np.uint8:
        f = np.clip(f if f.max() > 1.0 else f * 255.0, 0, 255).astype(np.uint8)
    return f


def _grid(S: int, ncols: int, size: float = 1.6) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, S))
    nrows = math.ceil(S / ncols)
    fig, axes = _figure(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4), layout="constrained")
    axes = list(axes.ravel())
    for ax in axes[S:]:
        fig.delaxes(ax)
    for ax in axes[:S]:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes[:S]


def sampling_positions(T: int, n: int = 16, positions=None, save=None, run_dir=None) -> Figure:
    """Which of a window's ``T`` frames the backbone decodes (default: ``uniform_indices(T, n)``)."""
    pos = _to_numpy(uniform_indices(T, n) if positions is None else positions).astype(int)
    fig, axes = _figure(figsize=(10, 1.5), layout="constrained")
    ax = axes[0, 0]
    ax.vlines(np.arange(T), 0, 0.4, color=UNLABELED, lw=1)
    ax.vlines(pos, 0, 1, color="C3", lw=2)
    ax.plot(pos, np.ones(len(pos)), "o", color="C3", ms=4)
    ax.set_yticks([])
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(0, 1.25)
    distinct = len(np.unique(pos))  # a short window repeats frames: count each decoded frame once
    repeats = f" ({len(pos)} positions, frames repeated)" if distinct < len(pos) else ""
    ax.set(xlabel="frame in window", title=f"{distinct} distinct of {T} frames decoded{repeats}")
    ax.spines[["top", "right", "left"]].set_visible(False)
    return _finish(fig, f"sampling_T{T}", save, run_dir)


def sampled_frames(frames, indices: Sequence[int] | None = None, ncols: int = 8, title: str = "",
                   save=None, run_dir=None) -> Figure:
    """A grid of the sampled frames of a window, each titled with its frame index.

    Shapes:
        frames: (S, 3, H, W) or (S, H, W, 3), uint8 (or float in [0, 1]).
        indices: (S,) the frame index of each (default 0..S-1).
    """
    imgs = _as_hwc(frames)
    idx = list(range(len(imgs))) if indices is None else [int(i) for i in _to_numpy(indices)]
    if len(idx) != len(imgs):
        raise ValueError(f"{len(imgs)} frames but {len(idx)} indices")
    fig, axes = _grid(len(imgs), ncols)
    for ax, img, i in zip(axes, imgs, idx):
        ax.imshow(img)
        ax.set_title(f"frame {i}", fontsize="small")
    if title:
        fig.suptitle(title)
    return _finish(fig, "sampled_frames", save, run_dir)


def pose_frames(frames, keypoints, indices: Sequence[int] | None = None, edges=COCO17_EDGES,
                video_size: tuple[int, int] | None = None, ncols: int = 8, save=None, run_dir=None) -> Figure:
    """Frames with the skeleton drawn on top; joints with score <= 0 or NaN are skipped.

    Args:
        frames: (S, 3, H, W) or (S, H, W, 3) images, or None to draw the skeletons alone.
        keypoints: (S, J, 3) x, y, score in pixels of the original video.
        video_size: (width, height) of the original video when ``frames`` were resized
            (keypoints are scaled to the frame size); None = same size.
    """
    kp = _to_numpy(keypoints).astype(np.float64)
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must be (S, J, 3), got shape {tuple(kp.shape)}")
    imgs = None if frames is None else _as_hwc(frames)
    if imgs is not None and len(imgs) != len(kp):
        raise ValueError(f"{len(imgs)} frames but {len(kp)} keypoint frames")
    if imgs is not None and video_size is not None:
        kp = kp.copy()
        kp[..., 0] *= imgs.shape[2] / video_size[0]
        kp[..., 1] *= imgs.shape[1] / video_size[1]
    idx = list(range(len(kp))) if indices is None else [int(i) for i in _to_numpy(indices)]
    fig, axes = _grid(len(kp), ncols)
    for ax, s, i in zip(axes, range(len(kp)), idx):
        if imgs is not None:
            ax.imshow(imgs[s])
        else:
            ax.set_aspect("equal")
            ax.invert_yaxis()  # image coordinates: y grows downwards
        xy = kp[s, :, :2]
        ok = np.isfinite(xy).all(1) & ((kp[s, :, 2] > 0) if kp.shape[-1] == 3 else True)
        for a, b in edges:
            if a < len(ok) and b < len(ok) and ok[a] and ok[b]:
                ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="lime", lw=1.5)
        ax.plot(xy[ok, 0], xy[ok, 1], "o", color="red", ms=2.5)
        if imgs is not None:  # keep the image's extent: off-frame joints must not rescale it
            ax.set_xlim(-0.5, imgs.shape[2] - 0.5)
            ax.set_ylim(imgs.shape[1] - 0.5, -0.5)
        ax.set_title(f"frame {i}", fontsize="small")
    return _finish(fig, "pose_frames", save, run_dir)


def token_norms(last_hidden_state, grid: tuple[int, int, int] | None = None, title: str = "",
                save=None, run_dir=None) -> Figure:
    """Heat maps of patch-token L2 norms, one panel per token time step (shared colour scale).

    Example: ``token_norms(backbone.tokens(video), grid=backbone.token_grid)``.

    Shapes:
        last_hidden_state: 3D backbone ``(B, T'*h*w, D)``; 2D backbone ``(B, F, h*w, D)`` (the first
            item is drawn; a leading CLS token, i.e. ``T'*h*w + 1`` tokens, is dropped); or one
            item ``(T'*h*w, D)`` / ``(T', h, w, D)``.
        grid: (T', h, w); required unless the input is (T', h, w, D).
    """
    x = _to_numpy(last_hidden_state).astype(np.float32)
    if x.ndim == 4 and grid is None:
        grid = x.shape[:3]
    if grid is None:
        raise ValueError(f"token_norms needs grid=(T', h, w) for tokens of shape {tuple(x.shape)}")
    Tp, h, w = (int(g) for g in grid)
    if x.ndim == 3 or (x.ndim == 4 and tuple(x.shape[:3]) != (Tp, h, w)):
        x = x[0]  # the first item: (N, D) or (F, N, D)
    x = x.reshape(-1, x.shape[-1])  # (N, D)
    if x.shape[0] == Tp * h * w + 1:
        x = x[1:]  # drop the CLS token of a 2D ViT
    if x.shape[0] != Tp * h * w:
        raise ValueError(f"expected {Tp}*{h}*{w} = {Tp * h * w} tokens for grid {grid}, got {x.shape[0]}")
    norms = np.linalg.norm(x, axis=-1).reshape(Tp, h, w)  # (T', h, w)
    ncols = min(Tp, 8)
    nrows = math.ceil(Tp / ncols)
    fig, axes = _figure(nrows, ncols, figsize=(1.8 * ncols + 1, 1.9 * nrows + 0.4), layout="constrained")
    axes = list(axes.ravel())
    for ax in axes[Tp:]:
        fig.delaxes(ax)
    vmin, vmax = float(norms.min()), float(norms.max())
    for t, ax in enumerate(axes[:Tp]):
        im = ax.imshow(norms[t], cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(f"t'={t}", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[:Tp], label="token L2 norm", shrink=0.8)
    fig.suptitle(title or f"patch-token norms ({Tp} time steps x {h}x{w} patches)")
    return _finish(fig, "token_norms", save, run_dir)
