"""TimeSformer (Bertasius et al., ICML 2021) from Hugging Face: ``TimesformerModel``.

Token layout: each frame cut into 16 x 16 patches (tubelet 1: ``T' = F``), one CLS token for the
clip; divided space-time attention (each layer: attention over time for every patch position,
then over space within every frame). ``last_hidden_state`` is ``(B, 1 + N * F, D)``: the CLS token,
then the patch tokens **space-major** (``(h, w, t)`` flattened: all frames of patch 0, then patch 1,
...), after the final LayerNorm. The kit reorders them to ``(B, F, N, D)``. Base: 8 frames, 224 px,
``D`` = 768; HR: 16 frames, 448 px; L: 96 frames.

Preprocessing: the checkpoints ship a ``VideoMAEImageProcessor`` config (shortest edge 224,
bilinear, centre crop 224, ImageNet mean/std), read through ``AutoVideoProcessor`` (its torchvision
twin, ``VideoMAEVideoProcessor``).

Pooling: ``TimesformerForVideoClassification`` classifies the final CLS token: ``clip`` = that
token. There is one CLS per clip, none per frame: ``steps`` = the mean of each frame's patch
tokens (after the same final LayerNorm).

Another ``img_size`` or ``num_frames``: the model's own rule applies (as in the original code):
its space and time position tables are resized by nearest-neighbour interpolation at every call.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from kit.features.backbones.base import Encoded, Encoder

log = logging.getLogger("kit")


class TimesformerEncoder(Encoder):
    """``TimesformerModel``: CLS for the clip, per-frame mean of patch tokens for the steps."""

    family = "timesformer"
    tubelet = 1

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.patch, self.feature_dim = _int(model.config.patch_size), int(model.config.hidden_size)
        self.pooling = "clip: the CLS token (the classifier's input); steps: mean of each frame's patch tokens"

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        """Shapes: ``(B, F, 3, img, img)`` -> grid ``(B, F, N, D)``, steps ``(B, F, D)``, clip ``(B, D)``."""
        B, Fr, _, H, W = pixel_values.shape
        h = self.model(pixel_values=pixel_values).last_hidden_state  # (B, 1 + N*F, D)
        N, D = (H // self.patch) * (W // self.patch), h.shape[-1]
        grid = h[:, 1:].reshape(B, N, Fr, D).transpose(1, 2)  # (B, N, F, D) -> (B, F, N, D)
        return Encoded(grid, grid.mean(2), h[:, 0])

    def gradient_checkpointing_enable(self) -> None:
        self.model.gradient_checkpointing_enable()


def build(src: str, config, hf_kw: dict, img_size: int, num_frames: int) -> TimesformerEncoder:
    """The encoder of a TimeSformer checkpoint, run on ``num_frames`` frames of ``img_size`` px."""
    from transformers import TimesformerForVideoClassification, TimesformerModel

    from kit.features.backbones.hf import pretrained

    patch = _int(config.patch_size)
    if img_size % patch:
        raise ValueError(f"{src}: img_size must be a multiple of its patch size {patch}, got {img_size}")
    if config.attention_type != "divided_space_time":
        log.warning(f"[warn] {src}: attention_type={config.attention_type!r} (not divided space-time)")
    if "TimesformerForVideoClassification" in (config.architectures or []):  # its classifier is not needed
        model = pretrained(TimesformerForVideoClassification, src, config, hf_kw).timesformer
    else:
        model = pretrained(TimesformerModel, src, config, hf_kw)
    native = (_int(config.image_size), int(config.num_frames))
    if native != (img_size, num_frames):
        # the layers read the grid from the config at every call; the embeddings then resize their tables
        model.config.image_size, model.config.num_frames = img_size, num_frames
        log.warning(f"[warn] {src} was trained on {native[1]} frames of {native[0]}px; running it on {num_frames} x "
                    f"{img_size}px: its space and time position tables are resized by nearest-neighbour "
                    "interpolation (the model's own rule), not retrained")
    return TimesformerEncoder(model)


def _int(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
