"""VideoMAE (Tong et al., NeurIPS 2022) from Hugging Face, and the ``tiny`` random one for smoke runs.

Token layout: patch 16, tubelet 2: a 16-frame 224 px clip gives ``last_hidden_state`` of
``(B, 8 * 14 * 14, 768)`` tokens, ``(t, h, w)`` flattened, no CLS token (VideoMAE-base). The
fine-tuned Kinetics checkpoints are ``VideoMAEForVideoClassification`` with
``use_mean_pooling=True``: the encoder has no final LayerNorm and the classifier sees
``fc_norm(mean(tokens))``. ``VideoMAEModel`` on such a checkpoint silently drops ``fc_norm``; the kit
loads the classification model and keeps it (``steps`` = ``fc_norm`` of each time step's mean over
space, ``clip`` = ``fc_norm`` of the mean over every token).

Its positions are a fixed sin-cos table, 1D over the flattened ``(t, h, w)`` index. At another
``img_size`` or ``num_frames`` the table is resampled as a 3D grid
(:func:`kit.features.backbones.base.resize_positions`) so that each token keeps the code of its place.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from kit.config import TINY_PATCH, TINY_TUBELET, check_clip_geometry
from kit.features.backbones.base import Backbone, Encoded, Encoder, pool_mean, resize_positions
from kit.features.backbones.checkpoints import IMAGENET_MEAN, IMAGENET_STD, make_resize, processor_resize
from kit.features.backbones.hf import hf_backbone

log = logging.getLogger("kit")


class VideoMAEEncoder(Encoder):
    """``VideoMAEModel`` (+ the classifier's ``fc_norm`` when the checkpoint has one)."""

    family = "videomae"

    def __init__(self, model: nn.Module, fc_norm: nn.Module | None):
        super().__init__()
        self.model, self.fc_norm = model, fc_norm
        config = model.config
        self.tubelet, self.patch = int(config.tubelet_size), _int(config.patch_size)
        self.feature_dim = int(config.hidden_size)
        self.pooling = "fc_norm(mean over tokens)" if fc_norm is not None else "mean over tokens (no fc_norm)"

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        B, Fr, _, H, W = pixel_values.shape
        h = self.model(pixel_values=pixel_values).last_hidden_state  # (B, T'*N, D)
        grid = h.reshape(B, Fr // self.tubelet, (H // self.patch) * (W // self.patch), h.shape[-1])  # (B, T', N, D)
        steps, clip = pool_mean(grid, self.fc_norm)
        return Encoded(grid, steps, clip)

    def gradient_checkpointing_enable(self) -> None:
        enable = getattr(self.model, "activation_checkpointing_enable", None)  # transformers 5's name
        (enable or self.model.gradient_checkpointing_enable)()


def load_videomae(src: str, model_id: str, *, mode: str, img_size: int, num_frames: int, frame_step: int,
                  freeze: bool, resize_mode: str, **hf_kw) -> Backbone:
    """One VideoMAE checkpoint (a folder or a hub id); a fine-tuned one keeps its ``fc_norm``."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(src, **hf_kw)
    if config.model_type != "videomae":
        raise ValueError(f"{src} holds a {config.model_type!r} model, not VideoMAE")
    encoder = build(src, config, hf_kw, img_size, num_frames)
    return hf_backbone(encoder, "videomae", "VideoMAE", src, model_id, hf_kw,
                       processor_resize(src, hf_kw, img_size, resize_mode), mode=mode, num_frames=num_frames,
                       frame_step=frame_step, freeze=freeze)


def build(src: str, config, hf_kw: dict, img_size: int, num_frames: int) -> VideoMAEEncoder:
    """The encoder of a VideoMAE checkpoint at ``(num_frames, img_size)`` (also ``backbone="hf"``'s VideoMAE family)."""
    from transformers import VideoMAEForVideoClassification, VideoMAEModel

    classify = config.use_mean_pooling and "VideoMAEForVideoClassification" in (config.architectures or [])
    cls = VideoMAEForVideoClassification if classify else VideoMAEModel
    model, info = cls.from_pretrained(src, config=config, output_loading_info=True, attn_implementation="sdpa",
                                      dtype=torch.float32, **hf_kw)
    if info["missing_keys"]:
        log.warning(f"[warn] {src}: weights missing (randomly initialised): {sorted(info['missing_keys'])[:8]}")
    encoder = VideoMAEEncoder(model.videomae if classify else model, model.fc_norm if classify else None)
    adapt_grid(encoder.model, img_size, num_frames, src)
    return encoder


def adapt_grid(model: nn.Module, img_size: int, num_frames: int, src: str = "") -> None:
    """Runs a VideoMAE on another ``(num_frames, img_size)`` than it was built for, positions resampled.

    Shapes: the position table ``(1, T'*h*w, D)`` becomes ``(1, T''*h'*w', D)``.
    """
    config, emb = model.config, model.embeddings
    if (config.image_size, config.num_frames) == (img_size, num_frames):
        return
    tub, patch = int(config.tubelet_size), _int(config.patch_size)
    check_clip_geometry(img_size, num_frames, patch, tub, "videomae")  # a ConfigError: the chain stops there
    old = (config.num_frames // tub, config.image_size // patch, config.image_size // patch)
    new = (num_frames // tub, img_size // patch, img_size // patch)
    emb.position_embeddings = resize_positions(emb.position_embeddings, old, new)
    pe = emb.patch_embeddings
    pe.image_size, pe.num_patches = (img_size, img_size), new[0] * new[1] * new[2]
    emb.num_patches = pe.num_patches
    log.warning(f"[warn] {src or 'VideoMAE'} was trained on {config.num_frames} frames of {config.image_size}px; "
                f"running it on {num_frames} x {img_size}px: its position table is resampled from the "
                f"{old[0]}x{old[1]}x{old[2]} token grid to {new[0]}x{new[1]}x{new[2]} (trilinear), not retrained")
    config.image_size, config.num_frames = img_size, num_frames


def load_tiny(*, mode: str, img_size: int, num_frames: int, frame_step: int, freeze: bool,
              resize_mode: str) -> Backbone:
    """A 2-layer, 64-wide VideoMAE with RANDOM weights (seed 0, so every run gets the same ones)."""
    from transformers import VideoMAEConfig, VideoMAEModel

    check_clip_geometry(img_size, num_frames, TINY_PATCH, TINY_TUBELET, "tiny")
    config = VideoMAEConfig(image_size=img_size, patch_size=TINY_PATCH, num_frames=num_frames, tubelet_size=TINY_TUBELET,
                            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, fc_norm = VideoMAEModel(config), nn.LayerNorm(64)
    log.warning("[warn] Using the tiny backbone: RANDOM weights (2-layer VideoMAE, seed 0); its features carry "
                "no meaning: for smoke tests of the pipeline only")
    resize = make_resize(img_size, resize_mode, img_size, "bilinear")
    return Backbone(VideoMAEEncoder(model, fc_norm), name="tiny", source="tiny", identity="seed0-h64-l2-i256",
                    mean=IMAGENET_MEAN, std=IMAGENET_STD, resize=resize, num_frames=num_frames,
                    frame_step=frame_step, mode=mode, freeze=freeze, random_init=True,
                    processor="none (random weights): shortest edge to img_size, centre crop, ImageNet mean/std")


def _int(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
