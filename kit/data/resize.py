"""How a decoded RGB frame becomes a backbone's square uint8 input (before normalisation).

Three geometries (``Resize.mode``), each a resize and then a crop or a pad:

- ``crop``: shortest edge to ``short_side`` (0 = ``size``), the other edge ``int(short_side * long /
  short)``, then the centre ``size x size`` with offsets ``(scaled - size) // 2`` (``offsets="floor"``,
  transformers' ``center_crop``) or ``int(round((scaled - size) / 2))`` (``"round"``, torchvision's
  ``CenterCrop``). This is the HF ``VideoMAEImageProcessor`` (``shortest_edge`` 224, ``crop_size``
  224) and, with ``short_side = int(size / crop_pct)`` and ``offsets="round"``, a timm eval transform
  (a 1-pixel shift of the crop costs a random tiny ViT a cosine of 0.94 at 32 px).
- ``squash``: both edges to ``size`` (the aspect ratio changes; the kit's original behaviour).
- ``pad``: longest edge to ``size``, the other ``int(size * short / long)``, centred on a
  ``size x size`` canvas of colour ``fill`` (extra pixel, if any, at the bottom / right).

Scaling (``interpolation``): ``bilinear`` / ``bicubic`` call ``torchvision.transforms.v2.functional
.resize`` on the uint8 frame with antialiasing, the very call the transformers 5 image processors
make, so their pixels come out bit-identical (the PIL-backend processors differ by at most 1 level);
``area`` is OpenCV ``INTER_AREA`` when shrinking and ``INTER_LINEAR`` when growing, what
``read_frames(path, indices, size: int)`` has always done. swscale's own scalers (one call with the
YUV -> RGB conversion) were measured and rejected: their pixels are further from the processor's
than ``area`` (mean 0.8-1.3 levels, up to 43).

Legend: ``h, w`` decoded frame, ``S = size``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

RESIZE_VERSION = 1  # bump when the pixels a given Resize produces change
MODES = ("crop", "squash", "pad")
INTERPOLATIONS = ("bilinear", "bicubic", "area")


@dataclass(frozen=True)
class Resize:
    """Frame geometry: decoded ``(h, w, 3)`` RGB uint8 -> ``(S, S, 3)`` RGB uint8.

    Args:
        size: output side ``S`` in pixels.
        mode: ``crop``, ``squash`` or ``pad`` (see the module docstring).
        short_side: ``crop`` only: the shortest edge before cropping; 0 means ``size``; at least ``size``.
        interpolation: ``bilinear`` or ``bicubic`` (antialiased, as the checkpoint's processor), or
            ``area`` (OpenCV, the kit's original squash).
        fill: ``pad`` only: the RGB colour (0..255 each) of the border; a backbone passes its mean
            colour, ``round(255 * mean)``, so the border normalises to about 0.

    Example:
        >>> r = Resize(224)  # VideoMAE Kinetics: shortest edge 224, centre crop 224
        >>> r.geometry(256, 340)  # (scaled h, scaled w, top, left)
        (224, 297, 0, 36)
        >>> r(np.zeros((256, 340, 3), np.uint8)).shape
        (224, 224, 3)
    """

    size: int
    mode: str = "crop"
    short_side: int = 0
    interpolation: str = "bilinear"
    fill: tuple = (0, 0, 0)
    offsets: str = "floor"  # crop offsets: floor (transformers' center_crop) | round (torchvision's CenterCrop, timm)

    def __post_init__(self):
        if not _is_int(self.size) or self.size < 1:
            raise ValueError(f"Resize.size must be an int >= 1, got {self.size!r}")
        if self.mode not in MODES:
            raise ValueError(f"Resize.mode must be one of {MODES}, got {self.mode!r}")
        if self.offsets not in ("floor", "round"):
            raise ValueError(f"Resize.offsets must be 'floor' (transformers) or 'round' (torchvision, timm), got "
                             f"{self.offsets!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"Resize.interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if not _is_int(self.short_side) or self.short_side < 0:
            raise ValueError(f"Resize.short_side must be an int >= 0 (0 = size), got {self.short_side!r}")
        if self.short_side and self.mode != "crop":
            raise ValueError(f"Resize.short_side applies to mode='crop' only, got short_side={self.short_side} "
                             f"with mode={self.mode!r}; leave it 0")
        if self.short_side and self.short_side < self.size:
            raise ValueError(f"Resize.short_side ({self.short_side}) must be >= size ({self.size}): the centre "
                             f"crop cannot be larger than the resized frame")
        fill = tuple(self.fill) if isinstance(self.fill, (tuple, list, np.ndarray)) else ()
        if len(fill) != 3 or not all(float(v) == int(v) and 0 <= v <= 255 for v in fill):
            raise ValueError(f"Resize.fill must be 3 integers in 0..255 (RGB), got {self.fill!r}; for a mean "
                             f"colour m in 0..1 pass round(255 * m)")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "short_side", int(self.short_side))
        object.__setattr__(self, "fill", tuple(int(v) for v in fill))

    def geometry(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Where a ``height x width`` frame goes: ``(scaled_h, scaled_w, top, left)``.

        ``crop``: the frame is scaled to ``scaled_h x scaled_w`` and the output is its window at
        ``(top, left)``; ``pad``: the scaled frame is placed at ``(top, left)`` of the output;
        ``squash``: ``(S, S, 0, 0)``. Rounding follows transformers (``image_transforms.
        get_resize_output_image_size``: the long edge truncated; ``center_crop``: offsets floored).
        """
        if height < 1 or width < 1:
            raise ValueError(f"frame size must be positive, got {height}x{width}")
        S = self.size
        if self.mode == "squash":
            return S, S, 0, 0
        short, long = min(height, width), max(height, width)
        if self.mode == "crop":
            new_short = self.short_side or S
            new_long = int(new_short * long / short)
        else:  # pad: the longest edge becomes S
            new_long, new_short = S, max(1, int(S * short / long))
        nh, nw = (new_short, new_long) if height <= width else (new_long, new_short)
        if self.mode == "crop":
            if self.offsets == "round":  # torchvision's center_crop: int(round(excess / 2.0)), Python's rounding
                return nh, nw, int(round((nh - S) / 2.0)), int(round((nw - S) / 2.0))
            return nh, nw, (nh - S) // 2, (nw - S) // 2
        return nh, nw, (S - nh) // 2, (S - nw) // 2

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``(h, w, 3)`` uint8 RGB -> ``(S, S, 3)`` uint8 RGB (a new, contiguous array)."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise ValueError(f"Resize expects an RGB frame, uint8 (h, w, 3); got {got}")
        h, w = rgb.shape[:2]
        nh, nw, top, left = self.geometry(h, w)
        x = _scale(rgb, nh, nw, self.interpolation)  # (nh, nw, 3)
        S = self.size
        if self.mode == "pad":
            out = np.empty((S, S, 3), np.uint8)
            out[:] = self.fill
            out[top:top + nh, left:left + nw] = x
            return out
        out = x[top:top + S, left:left + S]  # crop (squash: the whole frame)
        return out.copy() if x is rgb or not out.flags.c_contiguous else out

    def describe(self) -> dict:
        """Everything that changes the output, JSON-able, for feature fingerprints."""
        d = dict(mode=self.mode, size=self.size, interpolation=self.interpolation, version=RESIZE_VERSION)
        if self.mode == "crop":
            d.update(short_side=self.short_side or self.size, crop_offsets=self.offsets)
        if self.mode == "pad":
            d.update(fill=list(self.fill))
        d["scaler"] = _scaler_name(self.interpolation)
        return d


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _scaler_name(interpolation: str) -> str:
    if interpolation == "area":
        return f"cv2.resize INTER_AREA shrink / INTER_LINEAR grow (opencv {_major_minor(cv2.__version__)})"
    import torchvision
    return f"torchvision.resize uint8 antialias (torchvision {_major_minor(torchvision.__version__)})"


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _scale(rgb: np.ndarray, nh: int, nw: int, interpolation: str) -> np.ndarray:
    """``(h, w, 3)`` -> ``(nh, nw, 3)`` uint8 (may return ``rgb`` itself when the size is unchanged)."""
    h, w = rgb.shape[:2]
    if (nh, nw) == (h, w):
        return rgb
    if interpolation == "area":
        shrink = h > nh or w > nw  # the rule of the kit's original _to_rgb
        return cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    from torchvision.transforms.v2 import functional as tvF
    mode = tvF.InterpolationMode.BILINEAR if interpolation == "bilinear" else tvF.InterpolationMode.BICUBIC
    # Padded rows (PyAV pads 340 * 3 bytes to 1056) miss torch's uint8 channels-last kernel and take
    # a float path 4x slower; a read-only array makes torch.from_numpy warn.
    rgb = np.ascontiguousarray(rgb) if rgb.flags.writeable else rgb.copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1)  # (3, h, w), channels-last in memory: the fast uint8 kernel
    y = tvF.resize(x, [nh, nw], interpolation=mode, antialias=True)  # (3, nh, nw) uint8
    return y.permute(1, 2, 0).numpy()  # (nh, nw, 3)
