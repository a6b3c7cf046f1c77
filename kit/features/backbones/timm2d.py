"""2D image encoders from timm (DINOv2, AugReg ViTs, ...), run on every frame of a clip.

Token layout: each frame alone, ``forward_features`` gives ``(F, P + N, D)`` with ``P`` prefix tokens
(CLS, registers) and ``N = (img / patch)^2`` patch tokens; ``T' = F`` (a "tubelet" of one frame).
``steps`` is the model's own pooled vector per frame (``forward_head(pre_logits=True)``: CLS or
average pooling, as its pretrained head used), ``clip`` the mean of those over the clip (the original
script's 2D path: "collapsing clip_T frames with mean pooling").

Preprocessing is timm's eval transform for the model's data config at the kit's ``img_size``:
shortest edge to ``floor(img_size / crop_pct)`` with its interpolation (bicubic for ViTs), centre
crop, its mean/std.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from kit.features.backbones.base import Backbone, Encoded, Encoder
from kit.features.backbones.checkpoints import identity, make_resize

TIMM_NAMES = ("vit_small_patch14_dinov2.lvd142m", "vit_small_patch16_224.augreg_in21k_ft_in1k",
              "vit_base_patch16_224.augreg2_in21k_ft_in1k")


class TimmEncoder(Encoder):
    """A timm ViT applied frame by frame."""

    family = "vit2d"
    tubelet = 1

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.patch = _int(model.patch_embed.patch_size)
        self.feature_dim = int(model.num_features)
        self.prefix_tokens = int(getattr(model, "num_prefix_tokens", 1))
        self.pooling = f"the model's own pooling per frame ({getattr(model, 'global_pool', 'token') or 'none'}), " \
                       "mean over frames for a clip"

    def forward(self, pixel_values: torch.Tensor) -> Encoded:
        B, Fr = pixel_values.shape[:2]
        feats = self.model.forward_features(pixel_values.flatten(0, 1))  # (B*F, P+N, D)
        grid = feats[:, self.prefix_tokens:].reshape(B, Fr, -1, feats.shape[-1])  # (B, F, N, D)
        steps = self.model.forward_head(feats, pre_logits=True).reshape(B, Fr, -1)  # (B, F, D)
        return Encoded(grid, steps, steps.mean(1))

    def gradient_checkpointing_enable(self) -> None:
        self.model.set_grad_checkpointing(True)


def load_timm(timm_name: str, file: str | None, *, mode: str, img_size: int, num_frames: int, frame_step: int,
              freeze: bool, resize_mode: str) -> Backbone:
    """A timm model at the kit's ``img_size``; weights from ``file`` (timm's local-file mechanism) or the hub."""
    import timm

    model = timm.create_model(timm_name, pretrained=True, num_classes=0, img_size=img_size,
                              pretrained_cfg_overlay=dict(file=file) if file else None)
    data = timm.data.resolve_data_config({}, model=model)  # its input_size is not ours: crop_pct, interpolation are
    crop_pct = float(data.get("crop_pct") or 0.875)
    resize = make_resize(img_size, resize_mode, math.floor(img_size / crop_pct), data.get("interpolation", "bicubic"),
                         data["mean"], offsets="round")  # torchvision's CenterCrop rounds, transformers floors
    weights = file or cached_file(timm_name)
    proc = (f"timm eval transform: shortest edge to floor({img_size} / crop_pct {crop_pct}), "
            f"{data.get('interpolation')}, centre crop, mean={tuple(data['mean'])}, std={tuple(data['std'])}")
    return Backbone(TimmEncoder(model), name="vit2d", source=timm_name,
                    identity=identity(weights) if weights else f"timm:{timm_name}@unresolved", mean=data["mean"],
                    std=data["std"], resize=resize, num_frames=num_frames, frame_step=frame_step, mode=mode,
                    freeze=freeze, processor=proc)


def cached_file(timm_name: str, cache: str | None = None) -> str | None:
    """The cached weights file of a timm model's Hugging Face repo, or None (never the network)."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(timm_name)
    if cfg is None or not cfg.hf_hub_id:
        raise ValueError(f"timm has no pretrained weights on the Hugging Face hub for {timm_name!r}")
    for fname in ([cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]):
        hit = try_to_load_from_cache(cfg.hf_hub_id, fname, cache_dir=cache)
        if isinstance(hit, str):
            return hit
    return None


def weights_file(path: Path) -> str:
    """``path`` itself, or the weights file in the folder ``path``."""
    if path.is_file():
        return str(path)
    for fname in ("model.safetensors", "pytorch_model.bin"):
        if (path / fname).is_file():
            return str(path / fname)
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {path}")


def is_timm_name(model_id: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    return timm.is_model(model_id)


def _int(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
