"""One interface over every backbone: pixels in, frame-aligned feature vectors out.

Legend: ``B`` batch, ``F`` frames per clip (``num_frames``), ``s`` the frame step inside a clip
(``frame_step``), ``T'`` time steps per clip (``F / tubelet``; 2D models: ``F``), ``h, w`` patch
grid, ``N = h*w``, ``D`` width, ``K`` vectors per clip (1 in ``clip`` mode, ``T'`` in ``tokens``
mode), ``T`` frames in a window, ``L`` frames in a video, ``S`` decoded frames, ``C`` clips.

A *clip* is ``F`` frames taken every ``s`` frames: it spans ``F * s`` frames (``span``). A family's
:class:`Encoder` turns one clip's normalised pixels into :class:`Encoded` tokens; the
:class:`Backbone` owns everything around it: which frames make a clip, normalisation, the visual
mode, and how the ``K`` vectors of each clip are spread over frames.

Visual modes:

- ``clip``: one vector per clip, pooled as the checkpoint's classifier pools (VideoMAE:
  ``fc_norm(mean(tokens))``). Whole videos: clips tile the video, each frame takes the vector of
  its clip. Windows: the original script's behaviour exactly, ``F`` frames spread uniformly over
  the ``T``-frame window (``torch.linspace(0, T-1, F).long()``), one vector expanded to ``T``.
- ``tokens``: one vector per tubelet time step (the mean over space of the ``T'`` steps, then the
  classifier's norm), placed at the centre of the frames it covers and linearly interpolated to
  every frame. Whole videos and windows alike: clips of the fixed ``span`` tile the frames, so the
  time resolution (one vector per ``tubelet * s`` frames) does not depend on ``T``.

Past the last frame, a clip repeats the last frame (the padding rule of the windows).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kit.data.windows import uniform_indices

FEATURE_VERSION = 2  # bump when a code change alters the features of an unchanged checkpoint
MODES = ("clip", "tokens")


@dataclass
class Encoded:
    """What an :class:`Encoder` returns for a batch of clips."""

    grid: torch.Tensor  # (B, T', N, D) patch tokens (prefix/CLS tokens dropped)
    steps: torch.Tensor  # (B, T', D) one vector per time step, pooled like the checkpoint's classifier
    clip: torch.Tensor  # (B, D) one vector per clip, pooled like the checkpoint's classifier


class Encoder(nn.Module):
    """A family's network behind one call. Subclasses set the attributes and implement ``forward``.

    Attributes:
        family: e.g. ``videomae``, ``vit2d``. tubelet: frames per token time step (2D: 1).
        patch: patch side in pixels. feature_dim: ``D``. pooling: how ``steps``/``clip`` are pooled,
        in words, for reports.
    """

    family: str = ""
    tubelet: int = 1
    patch: int = 16
    feature_dim: int = 0
    pooling: str = ""

    def forward(self, pixel_values: torch.Tensor) -> Encoded:  # pragma: no cover - abstract
        """Shapes: pixel_values ``(B, F, 3, img, img)`` normalised -> :class:`Encoded`."""
        raise NotImplementedError

    def gradient_checkpointing_enable(self) -> None:  # pragma: no cover - per family
        raise NotImplementedError(f"{type(self).__name__} has no gradient checkpointing")


class Backbone(nn.Module):
    """A frozen or trainable encoder with its preprocessing, clip geometry and visual mode.

    Attributes:
        name: what was asked (``videomae``, ``vit2d``, ``tiny``, ...); family: the encoder's family.
        source: checkpoint id, folder or timm name; identity: what the weights are (a hub commit,
            file sizes and times): part of the fingerprint.
        resize: the :class:`kit.data.video.Resize` frames get at decode time (the checkpoint's own
            processor geometry unless ``resize_mode`` says otherwise); img_size = ``resize.size``.
        mean, std, num_frames (``F``), frame_step (``s``), span (``F*s``), steps (``T'``),
        feature_dim (``D``), mode, random_init, frozen.
        fingerprint: changes whenever the features would (weights, preprocessing, geometry, mode,
            kit feature version): keys the feature store and the window cache.
        autocast_dtype: e.g. ``torch.bfloat16`` to run the encoder under autocast on CUDA.
    """

    def __init__(self, encoder: Encoder, *, name: str, source: str, identity: str, mean, std, resize,
                 num_frames: int, frame_step: int = 1, mode: str = "tokens", freeze: bool = True,
                 random_init: bool = False, processor: str = ""):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"visual mode must be one of {MODES}, got {mode!r}")
        if num_frames < 1 or num_frames % encoder.tubelet:
            raise ValueError(f"num_frames must be a positive multiple of the tubelet size {encoder.tubelet} "
                             f"of {source}, got {num_frames}")
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        if resize.size % encoder.patch:
            raise ValueError(f"img_size must be a multiple of the patch size {encoder.patch} of {source}, "
                             f"got {resize.size}")
        self.encoder = encoder
        self.name, self.family, self.source, self.identity = name, encoder.family, source, identity
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.resize, self.img_size, self.processor = resize, resize.size, processor
        self.num_frames, self.frame_step, self.mode = num_frames, frame_step, mode
        self.span, self.tubelet, self.patch = num_frames * frame_step, encoder.tubelet, encoder.patch
        self.steps, self.feature_dim = num_frames // encoder.tubelet, encoder.feature_dim
        self.random_init, self.frozen, self.autocast_dtype = random_init, freeze, None
        self.register_buffer("_mean", torch.tensor(self.mean).view(3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std).view(3, 1, 1), persistent=False)
        # uint8 -> normalised in one multiply-add: (x / 255 - mean) / std = x * scale + shift
        self.register_buffer("_scale", 1 / (255 * self._std), persistent=False)
        self.register_buffer("_shift", -self._mean / self._std, persistent=False)
        key = json.dumps([FEATURE_VERSION, name, self.family, source, identity, self.mean, self.std,
                          resize.describe(), num_frames, frame_step, mode, random_init], sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        self.fingerprint = f"{name}-{mode}-{self.img_size}px-{num_frames}f-s{frame_step}-{digest}"
        if freeze:
            self.requires_grad_(False)
        self.train(not freeze)

    # --- one clip -----------------------------------------------------------------------------
    def clip_offsets(self) -> torch.Tensor:
        """Frame offsets of a clip's ``F`` frames from its first frame: ``0, s, 2s, ...``. ``(F,)``"""
        return torch.arange(self.num_frames) * self.frame_step

    def point_offsets(self) -> torch.Tensor:
        """Where each of a clip's ``K`` vectors sits, in frames from the clip's first frame (float).

        The centre of the frames it covers: the whole clip (``clip``) or one tubelet step (``tokens``).
        """
        off = self.clip_offsets().float()
        return off.mean().view(1) if self.mode == "clip" else off.view(self.steps, self.tubelet).mean(1)

    @property
    def points_per_clip(self) -> int:
        """``K``."""
        return 1 if self.mode == "clip" else self.steps

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (or float in [0, 1]) frames already at ``img_size`` -> normalised float.

        Frames get their geometry (:attr:`resize`) when decoded (``kit.data.video``), exactly as the
        checkpoint's processor would give it; here they are only scaled and normalised.

        Shapes: ``(B, S, 3, img, img)`` -> the same, float32.
        """
        if frames.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"frames must be {self.img_size}x{self.img_size} (got {tuple(frames.shape[-2:])}): "
                             "decode them with the backbone's geometry, e.g. kit.data.video.read_frames(path, "
                             "indices, backbone.resize)")
        x = frames.to(self._mean.device)
        if x.dtype == torch.uint8:
            return torch.addcmul(self._shift, x.float(), self._scale)  # one pass over the frames
        if x.numel() and x.amax() > 1.5:  # a classic: 0-255 values passed as float
            raise ValueError(f"float frames must be in [0, 1], got max {x.amax().item():.1f}: pass uint8 or divide "
                             "by 255")
        return (x.float() - self._mean) / self._std

    def _context(self) -> contextlib.ExitStack:
        """no_grad when frozen (not inference_mode: features may enter autograd later); autocast."""
        stack = contextlib.ExitStack()
        if self.frozen:
            stack.enter_context(torch.no_grad())
        if self.autocast_dtype is not None and self._mean.device.type == "cuda":
            stack.enter_context(torch.autocast("cuda", dtype=self.autocast_dtype))
        return stack

    def encode(self, frames: torch.Tensor) -> Encoded:
        """The encoder's tokens and pooled vectors for a batch of clips.

        Shapes: frames ``(B, F, 3, img, img)`` uint8 or float in [0, 1] -> :class:`Encoded`.
        """
        _check_video(frames, "frames")
        if frames.shape[1] != self.num_frames:
            raise ValueError(f"a clip is {self.num_frames} frames, got {tuple(frames.shape)}")
        with self._context():
            return self.encoder(self.preprocess(frames))

    def embed_clips(self, frames: torch.Tensor) -> torch.Tensor:
        """The ``K`` vectors of each clip. Shapes: ``(B, F, 3, img, img)`` -> ``(B, K, D)`` float32."""
        out = self.encode(frames)
        z = out.clip[:, None] if self.mode == "clip" else out.steps  # (B, 1, D) or (B, T', D)
        return z.float()

    # --- windows of T frames (the windowed path) ------------------------------------------------
    def num_clips(self, T: int) -> int:
        """``C``: clips per ``T``-frame window (``clip`` mode: 1, the original script's one clip)."""
        return 1 if self.mode == "clip" else -(-T // self.span)

    def sample_positions(self, T: int) -> torch.Tensor:
        """Window positions to decode, clip after clip. ``(S,)`` with ``S = C*F``; padding clamps to ``T-1``."""
        if T < 1:
            raise ValueError(f"window length T must be >= 1, got {T}")
        if self.mode == "clip":
            return uniform_indices(T, self.num_frames)
        starts = torch.arange(self.num_clips(T)) * self.span
        return (starts[:, None] + self.clip_offsets()).flatten().clamp(max=T - 1)  # (C, F) -> (S,)

    def num_points(self, T: int) -> int:
        """``K``: vectors :meth:`embed` returns for a ``T``-frame window (``C * K`` per clip)."""
        return self.num_clips(T) * self.points_per_clip

    def time_points(self, T: int) -> torch.Tensor:
        """Window position (in frames) of each vector of a window. ``(C*K,)``"""
        if self.mode == "clip":
            return self.sample_positions(T).float().mean().view(1)
        starts = torch.arange(self.num_clips(T)) * self.span
        return (starts[:, None] + self.point_offsets()).flatten()

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Compact, cacheable features of a window's decoded frames (those at ``sample_positions(T)``).

        Shapes: frames ``(B, S, 3, img, img)`` with ``S = C*F`` -> ``(B, C*K, D)`` float32.
        """
        _check_video(frames, "frames")
        B, S = frames.shape[:2]
        if S % self.num_frames:
            raise ValueError(f"embed expects S = a multiple of {self.num_frames} frames, got {tuple(frames.shape)}")
        C = S // self.num_frames
        z = self.embed_clips(frames.reshape(B * C, self.num_frames, *frames.shape[2:]))  # (B*C, K, D)
        return z.reshape(B, C * z.shape[1], z.shape[2])  # (B, C*K, D)

    def to_frames(self, emb: torch.Tensor, T: int) -> torch.Tensor:
        """Spreads a window's vectors over its ``T`` frames. Shapes: ``(B, C*K, D)`` -> ``(B, T, D)``."""
        K = self.num_points(T)
        if emb.ndim != 3 or emb.shape[1] != K:
            raise ValueError(f"to_frames expects (B, {K}, D) for T={T}, mode={self.mode!r}, got {tuple(emb.shape)}")
        if self.mode == "clip":
            return emb.expand(-1, T, -1)
        return interpolate(emb, self.time_points(T).to(emb.device), torch.arange(T, device=emb.device))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Frame-aligned features of whole windows.

        Shapes: video ``(B, T, 3, img, img)`` uint8 or float in [0, 1] -> ``(B, T, D)``.
        """
        _check_video(video, "video")
        T = video.shape[1]
        pos = self.sample_positions(T).to(video.device)
        return self.to_frames(self.embed(video[:, pos]), T)

    # --- whole videos (the two-stage path) --------------------------------------------------------
    def clip_starts(self, L: int) -> list[int]:
        """First frame of each clip tiling an ``L``-frame video: ``0, span, 2*span, ...`` (at least one)."""
        if L < 1:
            raise ValueError(f"a video needs >= 1 frame, got L={L}")
        return list(range(0, L, self.span))

    def clip_frames(self, start: int, L: int) -> torch.Tensor:
        """Frames of the clip starting at ``start``; past the end the last frame repeats. ``(F,)``"""
        return (start + self.clip_offsets()).clamp(max=L - 1)

    def spread(self, points: torch.Tensor, L: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Per-frame features of a whole video (frames ``start..stop-1``) from its clips' vectors.

        ``clip``: every frame takes its clip's vector; ``tokens``: linear interpolation between the
        vectors' positions (frames before the first / after the last take its value). Chunks of
        frames give exactly the rows of the whole, so a long video is written in bounded memory.

        Shapes: points ``(C, K, D)`` for ``C = len(clip_starts(L))`` clips -> ``(stop - start, D)``.
        """
        C, stop = len(self.clip_starts(L)), L if stop is None else stop
        if points.ndim != 3 or points.shape[:2] != (C, self.points_per_clip):
            raise ValueError(f"spread expects ({C}, {self.points_per_clip}, D) for L={L}, got {tuple(points.shape)}")
        frames = torch.arange(start, stop, device=points.device)
        if self.mode == "clip":
            return points[frames // self.span, 0]  # (stop - start, D)
        where = (torch.arange(C)[:, None] * self.span + self.point_offsets()).flatten()  # (C*K,)
        return interpolate(points.reshape(1, -1, points.shape[-1]), where.to(points.device), frames)[0]

    # --- inspection and training helpers ------------------------------------------------------------
    @torch.no_grad()
    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """Patch tokens of the first clip of a window, for inspection.

        Shapes: video ``(B, T, 3, img, img)`` -> ``(B, T', N, D)`` (``token_grid`` = ``(T', h, w)``).
        """
        _check_video(video, "video")
        first = self.sample_positions(video.shape[1])[:self.num_frames].to(video.device)
        return self.encode(video[:, first]).grid

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """``(T', h, w)``: the layout of :meth:`tokens`."""
        side = self.img_size // self.patch
        return self.steps, side, side

    def train(self, mode: bool = True) -> "Backbone":
        """A frozen backbone stays in eval mode even inside a model put in training mode."""
        return super().train(mode and not self.frozen)

    def gradient_checkpointing_enable(self) -> None:
        """Trades compute for memory when fine-tuning (``freeze=False``)."""
        self.encoder.gradient_checkpointing_enable()

    def summary(self) -> dict:
        """What was loaded and how it preprocesses: for notebook tables, manifests and run logs."""
        keys = ("name", "family", "source", "identity", "feature_dim", "mode", "img_size", "num_frames",
                "frame_step", "span", "tubelet", "patch", "mean", "std", "processor", "random_init", "frozen",
                "fingerprint")
        return ({k: getattr(self, k) for k in keys} | {"resize": self.resize.describe(),
                "pooling": self.encoder.pooling, "parameters": sum(p.numel() for p in self.parameters())})

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, source={self.source!r}, mode={self.mode!r}, D={self.feature_dim}, "
                f"img_size={self.img_size}, num_frames={self.num_frames}, frame_step={self.frame_step}, "
                f"frozen={self.frozen}")


def interpolate(values: torch.Tensor, where: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of vectors at non-decreasing frame positions, evaluated at ``frames``.

    Shapes: values ``(B, K, D)``, where ``(K,)``, frames ``(T,)`` -> ``(B, T, D)``; frames before the
    first (after the last) position take its value.
    """
    K = where.shape[0]
    t = frames.to(where.dtype)
    idx = torch.searchsorted(where, t, right=True)  # number of points <= t
    lo, hi = (idx - 1).clamp(0, K - 1), idx.clamp(0, K - 1)
    w = ((t - where[lo]) / (where[hi] - where[lo]).clamp(min=1e-6)).clamp(0, 1).to(values.dtype)[None, :, None]
    return values[:, lo] * (1 - w) + values[:, hi] * w


def _check_video(x: torch.Tensor, what: str) -> None:
    if x.ndim != 5 or x.shape[2] != 3:
        raise ValueError(f"{what} must be (B, T, 3, H, W) RGB frames, got shape {tuple(x.shape)}")


def pool_mean(grid: torch.Tensor, norm: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` and ``clip`` of a token grid by mean pooling, then ``norm`` (VideoMAE's fc_norm).

    Shapes: grid ``(B, T', N, D)`` -> steps ``(B, T', D)``, clip ``(B, D)``.
    """
    steps, clip = grid.mean(2), grid.mean((1, 2))  # (B, T', D), (B, D)
    if norm is not None:
        steps, clip = norm(steps), norm(clip)
    return steps, clip


def resize_positions(table: torch.Tensor, old: tuple[int, int, int], new: tuple[int, int, int]) -> torch.Tensor:
    """A position table laid out over a ``(T', h, w)`` token grid, resampled to another grid.

    VideoMAE's sin-cos table is 1D over the flattened ``(t, h, w)`` index: rebuilding it for another
    grid (what a changed ``image_size`` does) gives token ``(0, 1, 0)`` of a 10x10 grid the code
    that ``(0, 0, 10)`` had on the 14x14 grid the model learned. Resampling the table as a 3D grid
    (trilinear, as ViT position embeddings are interpolated) keeps each token's code near the code
    of the same place in the original grid.

    Shapes: table ``(1, T'*h*w, D)`` -> ``(1, T''*h'*w', D)``.
    """
    D = table.shape[-1]
    grid = table.reshape(1, *old, D).permute(0, 4, 1, 2, 3)  # (1, D, T', h, w)
    out = F.interpolate(grid.float(), size=new, mode="trilinear", align_corners=False)  # (1, D, T'', h', w')
    return out.permute(0, 2, 3, 4, 1).reshape(1, -1, D).to(table.dtype)  # (1, T''*h'*w', D)
