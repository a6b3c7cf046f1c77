"""``backbone="hf"``: any supported Hugging Face video checkpoint, its family read from ``config.json``.

``model_type`` picks the family (one file each): ``videomae`` (:mod:`.videomae`), ``vjepa2``
(:mod:`.vjepa2`), ``timesformer`` (:mod:`.timesformer`), ``vivit`` (:mod:`.vivit`),
``videoprism_vision_model`` / ``videoprism`` (:mod:`.videoprism`). Each family module documents
its token layout and pooling and provides ``build(src, config, hf_kw, img_size, num_frames) ->
Encoder``; here the checkpoint's own processor (``AutoVideoProcessor``, else ``AutoImageProcessor``)
gives the frame geometry and normalisation, and the weights' identity the fingerprint.

Checkpoints that need ``trust_remote_code`` (VideoMAE V2's ``OpenGVLab/VideoMAEv2-*``, among others)
are refused with a message: the kit never runs code downloaded with a checkpoint.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path

import torch

from kit.features.backbones.base import Backbone, Encoder
from kit.features.backbones.checkpoints import identity, processor_resize

log = logging.getLogger("kit")

# model_type -> (module, display name)
FAMILIES = {"videomae": ("videomae", "VideoMAE"), "vjepa2": ("vjepa2", "V-JEPA 2"),
            "timesformer": ("timesformer", "TimeSformer"), "vivit": ("vivit", "ViViT"),
            "videoprism_vision_model": ("videoprism", "VideoPrism"), "videoprism": ("videoprism", "VideoPrism")}


def load_hf(src: str, model_id: str, *, mode: str, img_size: int, num_frames: int, frame_step: int, freeze: bool,
            resize_mode: str, **hf_kw) -> Backbone:
    """A checkpoint (a folder or a hub id) of any family in :data:`FAMILIES`.

    Raises:
        ValueError: the checkpoint's ``model_type`` is not supported, or needs remote code.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(src, **hf_kw)
    except ValueError as e:  # an unknown model_type: transformers asks for trust_remote_code
        raise ValueError(f"{src}: {_first_line(e)} The kit supports {sorted(FAMILIES)} and never runs a checkpoint's "
                         "own code (trust_remote_code): convert it to one of those, or use another") from None
    if getattr(config, "auto_map", None):
        raise ValueError(f"{src}: its config maps to custom code ({sorted(config.auto_map)}): the kit never runs a "
                         "checkpoint's own code (trust_remote_code); VideoMAE V2 (OpenGVLab) checkpoints are such")
    if config.model_type not in FAMILIES:
        raise ValueError(f"{src} holds a {config.model_type!r} model; backbone='hf' supports {sorted(FAMILIES)}")
    module, family = FAMILIES[config.model_type]
    encoder: Encoder = importlib.import_module(f"kit.features.backbones.{module}").build(
        src, config, hf_kw, img_size, num_frames)
    resize, mean, std, proc = processor_resize(src, hf_kw, img_size, resize_mode,
                                               ("AutoVideoProcessor", "AutoImageProcessor"))
    return hf_backbone(encoder, "hf", family, src, model_id, hf_kw, (resize, mean, std, proc), mode=mode,
                       num_frames=num_frames, frame_step=frame_step, freeze=freeze)


def hf_backbone(encoder: Encoder, name: str, family: str, src: str, model_id: str, hf_kw: dict, preprocessing: tuple,
                *, mode: str, num_frames: int, frame_step: int, freeze: bool) -> Backbone:
    """The :class:`Backbone` of a Hugging Face checkpoint's encoder, with the chain's ``[info]`` lines.

    ``preprocessing`` is :func:`~kit.features.backbones.checkpoints.processor_resize`'s ``(resize, mean,
    std, processor description)``.
    """
    resize, mean, std, proc = preprocessing
    log.info(f"[info] Using {family} (3D) backbone from Hugging Face")
    log.info(f"[info] Model: {src}")
    log.info(f"[info] Preprocessing: {proc}; {num_frames} frames every {frame_step} frame(s); pooling: "
             f"{encoder.pooling}")
    return Backbone(encoder, name=name, source=model_id if src == model_id else src,
                    identity=identity(weights_folder(src, hf_kw)), mean=mean, std=std, resize=resize,
                    num_frames=num_frames, frame_step=frame_step, mode=mode, freeze=freeze, processor=proc)


def pretrained(cls, src: str, config, hf_kw: dict, **kw) -> torch.nn.Module:
    """``cls.from_pretrained`` in float32, eval mode; missing weights are logged (they are random)."""
    model, info = cls.from_pretrained(src, config=config, output_loading_info=True, dtype=torch.float32, **hf_kw, **kw)
    if info["missing_keys"]:
        log.warning(f"[warn] {src}: weights missing (randomly initialised): {sorted(info['missing_keys'])[:8]}")
    return model.eval()


def weights_folder(src: str, hf_kw: dict) -> str:
    """The folder holding the checkpoint's files (the cache snapshot for a hub id)."""
    if Path(src).exists():
        return src
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(src, "config.json", cache_dir=hf_kw.get("cache_dir"))
    return str(Path(hit).parent) if isinstance(hit, str) else src


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
