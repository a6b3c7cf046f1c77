"""V-JEPA 2 (Assran et al., 2025) from Hugging Face: ``VJEPA2Model`` / ``VJEPA2ForVideoClassification``.

Token layout: a Conv3d of tubelet 2 x patch 16 x 16, no CLS or register token: a 16-frame 256 px clip
gives ``last_hidden_state (B, 8 * 16 * 16, D)``, ``(t, h, w)`` flattened (``T' = F / 2``, ``N = 256``);
``D`` = 1024 (ViT-L), 1280 (ViT-H), 1408 (ViT-g). The encoder ends with a LayerNorm. Positions are
3D rotary embeddings computed from each token's ``(t, h, w)`` index, so any frame count works
("frames_per_clip ... does not impact inference", the config says); the height/width split is read
from ``config.crop_size`` when the model is built, so at another ``img_size`` the kit sets each
attention layer's grid to ``img_size / 16`` (the original code passes the grid at every call).

Preprocessing (``VJEPA2VideoProcessor``): shortest edge to ``int(crop * 256 / 224)`` (292 for 256),
bilinear, centre crop ``crop`` (256), ImageNet mean/std.

Pooling, as the checkpoint's classifier pools:

- ``VJEPA2ForVideoClassification`` (``-ssv2``, ``-diving48`` checkpoints): an attentive pooler (3
  self-attention layers over the tokens, then one learned query cross-attending to them) feeds the
  linear classifier. ``clip`` = the pooler on all ``T' * N`` tokens; ``steps`` = the pooler on each
  time step's ``N`` tokens (their encoder states still saw the whole clip).
- ``VJEPA2Model`` (the pretrained ``fpc64`` encoders): no classifier exists (the paper trains an
  attentive probe per task); ``clip`` = mean over all tokens, ``steps`` = mean over each step's tokens.

The predictor (the JEPA training head) is dropped at load: it plays no part in features.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from kit.features.backbones.base import Encoded, Encoder, pool_mean

log = logging.getLogger("kit")


class VJEPA2Encoder(Encoder):
    """The V-JEPA 2 encoder (+ the classifier's attentive pooler when the checkpoint has one)."""

    family = "vjepa2"

    def __init__(self, model: nn.Module, pooler: nn.Module | None):
        super().__init__()
        self.model, self.pooler = model, pooler  # model: VJEPA2Model without its predictor
        config = model.config
        self.tubelet, self.patch = int(config.tubelet_size), _int(config.patch_size)
        self.feature_dim = int(config.hidden_size)
        self.pooling = ("the classifier's attentive pooler (clip: all tokens; steps: each time step's tokens)"
                        if pooler is not None else "mean over tokens (no classifier in the checkpoint)")

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        """Shapes: ``(B, F, 3, img, img)`` -> grid ``(B, T', N, D)``, steps ``(B, T', D)``, clip ``(B, D)``."""
        B, Fr, _, H, W = pixel_values.shape
        h = self.model.encoder(pixel_values_videos=pixel_values).last_hidden_state  # (B, T'*N, D)
        Tp, D = Fr // self.tubelet, h.shape[-1]
        grid = h.reshape(B, Tp, (H // self.patch) * (W // self.patch), D)  # (B, T', N, D)
        if self.pooler is None:
            steps, clip = pool_mean(grid, None)
        else:
            clip = self.pooler(h)  # (B, D)
            steps = self.pooler(grid.flatten(0, 1)).reshape(B, Tp, D)  # (B*T', N, D) -> (B, T', D)
        return Encoded(grid, steps, clip)

    def gradient_checkpointing_enable(self) -> None:
        self.model.gradient_checkpointing_enable()


def build(src: str, config, hf_kw: dict, img_size: int, num_frames: int) -> VJEPA2Encoder:
    """The encoder of a V-JEPA 2 checkpoint at the kit's ``img_size`` (``num_frames``: any multiple of 2)."""
    from transformers import VJEPA2ForVideoClassification, VJEPA2Model

    from kit.features.backbones.hf import pretrained

    classify = "VJEPA2ForVideoClassification" in (config.architectures or [])
    model = pretrained(VJEPA2ForVideoClassification if classify else VJEPA2Model, src, config, hf_kw)
    backbone, pooler = (model.vjepa2, model.pooler) if classify else (model, None)
    backbone.predictor = None  # the JEPA predictor: training only
    patch = _int(config.patch_size)
    if img_size % patch:
        raise ValueError(f"{src}: img_size must be a multiple of its patch size {patch}, got {img_size}")
    if img_size != config.crop_size:
        for layer in backbone.encoder.layer:  # the rotary positions' row length, fixed at build time
            layer.attention.grid_size = img_size // patch
        log.warning(f"[warn] {src} was trained at {config.crop_size}px; running it at {img_size}px: its rotary "
                    f"positions follow the {img_size // patch}x{img_size // patch} patch grid")
    return VJEPA2Encoder(backbone, pooler)


def _int(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
