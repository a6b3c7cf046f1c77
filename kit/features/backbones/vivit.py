"""ViViT (Arnab et al., ICCV 2021), model 1 (joint space-time attention), from Hugging Face: ``VivitModel``.

Token layout: a Conv3d of tubelet 2 x 16 x 16 (``T' = F / 2``), then one CLS token in front:
``last_hidden_state (B, 1 + T' * h * w, D)``, patch tokens ``(t, h, w)`` flattened, after the final
LayerNorm. ``google/vivit-b-16x2-kinetics400``: 32 frames, 224 px, ``D`` = 768 (16 x 14 x 14 tokens).

Preprocessing: ``VivitImageProcessor`` config (shortest edge 256, bilinear, centre crop 224), read
through ``AutoVideoProcessor`` (``VivitVideoProcessor``, torchvision). Its rescale is ``x / 127.5 - 1``
(``offset``) and then it normalises with mean = std = 0.5: the network sees ``4u - 3`` for pixels
``u`` in [0, 1], which the kit reproduces as mean 0.75, std 0.25
(:func:`kit.features.backbones.checkpoints.normalisation`).

Pooling: ``VivitForVideoClassification`` classifies the final CLS token: ``clip`` = that token;
there is no per-step CLS: ``steps`` = the mean of each time step's patch tokens.

Another ``img_size`` or ``num_frames``: the learned position table covers the 3D grid
``(T', h, w)``; the kit resamples it as a 3D grid (trilinear, :func:`kit.features.backbones.base.
resize_positions`), the CLS position kept. (The model's own ``interpolate_pos_encoding`` treats the
whole table as one square 2D grid, which scrambles a video's positions, and cannot change ``T'``.)
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from kit.features.backbones.base import Encoded, Encoder, resize_positions

log = logging.getLogger("kit")


class VivitEncoder(Encoder):
    """``VivitModel``: CLS for the clip, per-step mean of patch tokens for the steps."""

    family = "vivit"

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        tub = list(model.config.tubelet_size)
        self.tubelet, self.patch, self.feature_dim = int(tub[0]), int(tub[1]), int(model.config.hidden_size)
        self.pooling = "clip: the CLS token (the classifier's input); steps: mean of each time step's patch tokens"

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        """Shapes: ``(B, F, 3, img, img)`` -> grid ``(B, T', N, D)``, steps ``(B, T', D)``, clip ``(B, D)``."""
        B, Fr, _, H, W = pixel_values.shape
        h = self.model(pixel_values=pixel_values).last_hidden_state  # (B, 1 + T'*N, D)
        N = (H // self.patch) * (W // self.patch)
        grid = h[:, 1:].reshape(B, Fr // self.tubelet, N, h.shape[-1])  # (B, T', N, D)
        return Encoded(grid, grid.mean(2), h[:, 0])

    def gradient_checkpointing_enable(self) -> None:
        self.model.gradient_checkpointing_enable()


def build(src: str, config, hf_kw: dict, img_size: int, num_frames: int) -> VivitEncoder:
    """The encoder of a ViViT checkpoint, its position table resampled to ``(num_frames, img_size)``."""
    from transformers import VivitForVideoClassification, VivitModel

    from kit.features.backbones.hf import pretrained

    tub, patch = int(config.tubelet_size[0]), int(config.tubelet_size[1])
    if img_size % patch or num_frames % tub:
        raise ValueError(f"{src}: img_size must be a multiple of its patch size {patch} and num_frames of its tubelet "
                         f"size {tub}, got {img_size}, {num_frames}")
    if "VivitForVideoClassification" in (config.architectures or []):  # its classifier is not needed
        model = pretrained(VivitForVideoClassification, src, config, hf_kw).vivit
    else:  # VivitModel's tanh pooler is not what the classifier reads: leave it out
        model = pretrained(VivitModel, src, config, hf_kw, add_pooling_layer=False)
    side, frames = _int(config.image_size), int(config.num_frames)
    if (side, frames) != (img_size, num_frames):
        old = (frames // tub, side // patch, side // patch)
        new = (num_frames // tub, img_size // patch, img_size // patch)
        emb = model.embeddings
        table = emb.position_embeddings.data  # (1, 1 + T'*h*w, D)
        patches = resize_positions(table[:, 1:], old, new)  # (1, T''*h'*w', D)
        emb.position_embeddings = nn.Parameter(torch.cat([table[:, :1], patches], 1))
        emb.image_size = emb.patch_embeddings.image_size = (img_size, img_size)  # forward checks the input size
        emb.patch_embeddings.num_patches = new[0] * new[1] * new[2]
        model.config.image_size, model.config.num_frames = img_size, num_frames
        log.warning(f"[warn] {src} was trained on {frames} frames of {side}px; "
                    f"running it on {num_frames} x {img_size}px: its position table is resampled from the "
                    f"{old[0]}x{old[1]}x{old[2]} token grid to {new[0]}x{new[1]}x{new[2]} (trilinear), not retrained")
    return VivitEncoder(model)


def _int(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
