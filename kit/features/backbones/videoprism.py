"""VideoPrism (Zhao et al., ICML 2024) from Hugging Face: ``VideoPrismVisionModel`` and relatives.

Token layout: a factorised encoder (ViViT model 2). Each frame is cut into 18 x 18 patches
(tubelet 1: ``T' = F``; 288 px -> a 16 x 16 grid), no CLS token; spatial layers run per frame,
temporal layers per patch position over the frames; ``last_hidden_state (B, F * N, D)`` is
**frame-major** (``(t, h, w)`` flattened) after the last LayerNorm. Base: 16 frames, ``D`` = 768;
large: 8 frames, ``D`` = 1024. (The model's LayerNorms scale by ``1 + weight``: its own class does that.)

Checkpoints, by ``model_type``:

- ``videoprism_vision_model``: ``VideoPrismVisionModel`` (the frozen encoder the paper evaluates)
  or ``VideoPrismForVideoClassification``;
- ``videoprism``: ``VideoPrismClipModel`` (video-text, the ``lvt`` checkpoints): the kit uses its
  video tower.

Preprocessing: what the checkpoint's video processor config says; ``VideoPrismProcessor`` resizes to
288 x 288 (aspect ratio not kept), bicubic, and does **not** normalise (pixels in [0, 1]). The kit's
default ``resize_mode='crop'`` keeps the aspect ratio; ``resize_mode='squash'`` reproduces the
processor exactly.

Pooling, as the checkpoint's head pools:

- ``VideoPrismForVideoClassification``: multi-head attention pooling (one learned query) + LayerNorm
  feeds the classifier; ``VideoPrismClipModel``: 2 auxiliary layers, attention pooling, LayerNorm,
  L2 norm give the video embedding matched against text. ``clip`` = that head on all tokens;
  ``steps`` = the same head on each frame's ``N`` tokens.
- ``VideoPrismVisionModel``: no head: ``clip`` = mean over tokens, ``steps`` = mean per frame.

Another ``img_size`` or ``num_frames``: the model's own ``interpolate_pos_encoding`` (bilinear,
antialiased, of the 2D spatial and 1D temporal tables) at every call.
"""
from __future__ import annotations

import torch
from torch import nn

from kit.features.backbones.base import Encoded, Encoder, pool_mean


class VideoPrismEncoder(Encoder):
    """The VideoPrism vision encoder (+ the checkpoint's pooling head, when it has one)."""

    family = "videoprism"
    tubelet = 1

    def __init__(self, model: nn.Module, head: nn.Module | None, interpolate: bool, what: str):
        super().__init__()
        self.model, self.head, self.interpolate = model, head, interpolate
        config = model.config
        self.patch, self.feature_dim = int(list(config.tubelet_size)[1]), int(config.hidden_size)
        self.pooling = (f"{what} (clip: all tokens; steps: each frame's tokens)" if head is not None
                        else "mean over tokens (no head in the checkpoint)")

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        """Shapes: ``(B, F, 3, img, img)`` -> grid ``(B, F, N, D)``, steps ``(B, F, D)``, clip ``(B, D)``."""
        B, Fr, _, H, W = pixel_values.shape
        h = self.model(pixel_values_videos=pixel_values, interpolate_pos_encoding=self.interpolate).last_hidden_state
        D = h.shape[-1]  # h: (B, F*N, D)
        grid = h.reshape(B, Fr, (H // self.patch) * (W // self.patch), D)  # (B, F, N, D)
        if self.head is None:
            steps, clip = pool_mean(grid, None)
        else:
            clip = self.head(h)  # (B, D)
            steps = self.head(grid.flatten(0, 1)).reshape(B, Fr, D)  # (B*F, N, D) -> (B, F, D)
        return Encoded(grid, steps, clip)

    def gradient_checkpointing_enable(self) -> None:
        self.model.gradient_checkpointing_enable()


class ClassifierHead(nn.Module):
    """``VideoPrismForVideoClassification``'s pooling: ``head_layernorm(head(tokens))``. ``(B, n, D) -> (B, D)``"""

    def __init__(self, head: nn.Module, norm: nn.Module):
        super().__init__()
        self.head, self.norm = head, norm

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.head(tokens)[0]).squeeze(1)


class VideoTowerHead(nn.Module):
    """``VideoPrismVideoModel``'s pooling: auxiliary layers, attention pooling, LayerNorm, L2 norm.

    Shapes: ``(B, n, D) -> (B, D)``.
    """

    def __init__(self, video_model: nn.Module):
        super().__init__()
        self.aux, self.head, self.norm = video_model.auxiliary_layers, video_model.head, video_model.head_layernorm
        self.l2 = bool(video_model.config.apply_l2norm)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        from transformers.models.videoprism.modeling_videoprism import l2norm

        for layer in self.aux:
            tokens = layer(tokens)
        z = self.norm(self.head(tokens)[0]).squeeze(1)
        return l2norm(z, dim=-1) if self.l2 else z


def build(src: str, config, hf_kw: dict, img_size: int, num_frames: int) -> VideoPrismEncoder:
    """The vision encoder of a VideoPrism checkpoint (``model_type`` ``videoprism_vision_model`` or ``videoprism``)."""
    from transformers import VideoPrismClipModel, VideoPrismForVideoClassification, VideoPrismVisionModel

    from kit.features.backbones.hf import pretrained

    vision = config.vision_config if config.model_type == "videoprism" else config
    patch = int(list(vision.tubelet_size)[1])
    if img_size % patch:
        raise ValueError(f"{src}: img_size must be a multiple of its patch size {patch}, got {img_size}")
    interpolate = (_int(vision.image_size), int(vision.num_frames)) != (img_size, num_frames)
    if config.model_type == "videoprism":
        clip_model = pretrained(VideoPrismClipModel, src, config, hf_kw)
        video = clip_model.video_model
        return VideoPrismEncoder(video.vision_model, VideoTowerHead(video), interpolate,
                                 "the video tower's head: auxiliary layers, attention pooling, LayerNorm, L2 norm")
    if "VideoPrismForVideoClassification" in (config.architectures or []):
        model = pretrained(VideoPrismForVideoClassification, src, config, hf_kw)
        return VideoPrismEncoder(model.vision_model, ClassifierHead(model.head, model.head_layernorm), interpolate,
                                 "the classifier's attention pooling + LayerNorm")
    return VideoPrismEncoder(pretrained(VideoPrismVisionModel, src, config, hf_kw), None, interpolate, "")


def _int(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
