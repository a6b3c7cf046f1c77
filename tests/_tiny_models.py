"""Tiny checkpoints on disk, in the layouts real ones come in (for tests; no network).

- ``save_tiny_videomae``: a ``save_pretrained`` folder (model + image-processor config).
- ``save_tiny_vit``: a timm ViT state dict in a ``.safetensors`` file.
- ``fake_hub_cache``: files placed where ``huggingface_hub`` looks for a cached repo.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

TINY_IMG = 32  # 2 x 2 patches of 16 px
TIMM_TINY = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"  # the smallest ViT with hub weights in timm
MEAN, STD = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)  # neither ImageNet nor the 0.5 class default


def save_tiny_videomae(folder: Path, classification: bool = True, num_frames: int = 16):
    """A 2-layer, 32-wide VideoMAE (and its image processor) saved to ``folder``; returns the model."""
    from transformers import (VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor,
                              VideoMAEModel)

    config = VideoMAEConfig(image_size=TINY_IMG, patch_size=16, num_frames=num_frames, tubelet_size=2,
                            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            num_labels=3, use_mean_pooling=True)
    torch.manual_seed(1)
    model = (VideoMAEForVideoClassification if classification else VideoMAEModel)(config).eval()
    if classification:  # fc_norm starts as the identity affine map: make its weights matter
        torch.nn.init.normal_(model.fc_norm.weight, 1.0, 0.5)
        torch.nn.init.normal_(model.fc_norm.bias, 0.0, 0.5)
    model.save_pretrained(folder)
    VideoMAEImageProcessor(image_mean=list(MEAN), image_std=list(STD)).save_pretrained(folder)
    return model


def save_tiny_vit(file: Path, name: str = TIMM_TINY, img_size: int = TINY_IMG):
    """A randomly initialised timm ViT (no head) saved as a state dict; returns the model."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(2)
    model = timm.create_model(name, pretrained=False, num_classes=0, img_size=img_size).eval()
    save_file(model.state_dict(), str(file))
    return model


def fake_hub_cache(cache: Path, repo_id: str, files: list[Path]) -> Path:
    """Copies ``files`` into ``cache`` as the ``main`` snapshot of ``repo_id``; returns the snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for f in files:
        shutil.copy(f, snapshot / f.name)
    return snapshot
