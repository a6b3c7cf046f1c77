"""Backbones: :func:`load_backbone` gives a :class:`Backbone`, whatever the family behind it.

``load_backbone("auto")`` follows the original script's chain: VideoMAE (``path`` folder, the local
Hugging Face cache, then the hub when online), then timm 2D ViTs (cache, then hub), then a
RuntimeError that lists what was tried and how to fix it. Offline it decides in seconds.
``load_backbone("hf")`` loads any supported Hugging Face video checkpoint (``path`` folder, the cache,
then the hub when online), its family read from its ``config.json`` (:mod:`.hf`). Families live one
per file: :mod:`.videomae` (and ``tiny``), :mod:`.vjepa2`, :mod:`.timesformer`, :mod:`.vivit`,
:mod:`.videoprism`, :mod:`.timm2d` (2D image models per frame: DINOv2, DINOv3, CLIP towers, ...);
:mod:`.base` is the interface and the clip geometry, :mod:`.checkpoints` a checkpoint's identity
and preprocessing.

Example:
    >>> bb = load_backbone("tiny", img_size=64)  # doctest: +SKIP
    >>> bb(torch.zeros(2, 180, 3, 64, 64, dtype=torch.uint8)).shape  # doctest: +SKIP
    torch.Size([2, 180, 64])
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from kit.features.backbones.base import FEATURE_VERSION, MODES, Backbone, Encoded, Encoder
from kit.features.backbones.checkpoints import IMAGENET_MEAN, IMAGENET_STD, RESIZE_MODES, hf_cache
from kit.features.backbones.hf import FAMILIES, load_hf
from kit.features.backbones.timm2d import TIMM_NAMES, cached_file, is_timm_name, load_timm, weights_file
from kit.features.backbones.videomae import load_tiny, load_videomae
from kit.log import setup_logging

__all__ = ["Backbone", "Encoded", "Encoder", "load_backbone", "FEATURE_VERSION", "MODES", "NAMES", "RESIZE_MODES",
           "DEFAULT_MODEL_ID", "TIMM_NAMES", "FAMILIES", "IMAGENET_MEAN", "IMAGENET_STD"]

DEFAULT_MODEL_ID = "MCG-NJU/videomae-base-finetuned-kinetics"
NAMES = ("auto", "videomae", "vit2d", "tiny", "hf")
FIXES = """Fixes (any one):
  - path= (RunConfig.backbone_path, --backbone_path): a VideoMAE folder saved with save_pretrained
    (backbone="vit2d": a timm weights file);
  - fill the Hugging Face cache on a machine with network, then copy it here (~/.cache/huggingface, or $HF_HOME):
        hf download {repo}
    (older huggingface_hub: huggingface-cli download {repo});
  - backbone="tiny": RANDOM weights, a smoke test of the pipeline, not a model."""
HF_FIXES = """Fixes (any one):
  - path= (RunConfig.backbone_path, --backbone_path): a checkpoint folder saved with save_pretrained
    (config.json, the weights, the processor config);
  - fill the Hugging Face cache on a machine with network, then copy it here (~/.cache/huggingface, or $HF_HOME):
        hf download {repo}
    (older huggingface_hub: huggingface-cli download {repo})."""

log = logging.getLogger("kit")


def load_backbone(name: str = "auto", model_id: str = DEFAULT_MODEL_ID, path: str | os.PathLike | None = None,
                  mode: str = "tokens", img_size: int = 224, num_frames: int = 16, freeze: bool = True,
                  frame_step: int = 1, resize_mode: str = "crop",
                  timm_names: tuple[str, ...] | None = None) -> Backbone:
    """Loads a backbone; ``auto`` follows the fallback chain of the module docstring.

    Args:
        name: ``auto`` (or ``""``), ``videomae`` (no fallback), ``vit2d`` (timm only), ``hf`` (any
            supported Hugging Face video checkpoint, family from its config: VideoMAE, V-JEPA 2,
            TimeSformer, ViViT, VideoPrism; no fallback) or ``tiny`` (a small VideoMAE with RANDOM
            weights, seed 0: for smoke runs on CPU).
        model_id: the checkpoint id (``hf``: a hub id or a folder); for ``vit2d`` a timm name here
            picks that model.
        path: a checkpoint folder (``save_pretrained`` layout) for ``auto``/``videomae``/``hf``; for
            ``vit2d`` a timm weights file (``.safetensors``/``.pth``) or a folder holding one.
        mode: ``clip`` or ``tokens`` (see :mod:`kit.features.backbones.base`).
        img_size: input resolution (a multiple of the patch size).
        num_frames: frames per clip ``F``; frame_step: frames between them (a clip spans ``F * step``).
        freeze: eval mode, no gradients, forward under ``torch.no_grad``.
        resize_mode: ``crop`` (the checkpoint's own processor: shortest edge, centre crop), ``squash``
            (stretch to a square) or ``pad`` (keep the whole frame, pad with the mean colour).
        timm_names: the 2D models to try, in order (default ``TIMM_NAMES``).

    Raises:
        RuntimeError: nothing could be loaded; the message lists each attempt and the fixes.
    """
    setup_logging()
    name = name or "auto"
    if name not in NAMES or mode not in MODES or resize_mode not in RESIZE_MODES:
        raise ValueError(f"backbone name must be one of {NAMES}, mode one of {MODES} and resize_mode one of "
                         f"{RESIZE_MODES}, got {name!r}, {mode!r}, {resize_mode!r}")
    if img_size < 1 or num_frames < 1 or frame_step < 1:
        raise ValueError(f"img_size, num_frames and frame_step must be >= 1, got {img_size}, {num_frames}, {frame_step}")
    if path is not None and str(path) and not Path(path).exists():
        raise FileNotFoundError(f"backbone path {path} does not exist: fix backbone_path or leave it empty")
    path = str(path) if path is not None and str(path) else None
    common = dict(mode=mode, img_size=img_size, num_frames=num_frames, frame_step=frame_step, freeze=freeze,
                  resize_mode=resize_mode)
    if name == "tiny":
        return load_tiny(**common)
    if name == "hf":
        return _hf_chain(model_id, path, common)
    tried: list[tuple[str, str]] = []  # (what was tried, why it failed)
    if name in ("auto", "videomae"):
        bb = _videomae_chain(model_id, path, tried, common)
        if bb is not None:
            return bb
        if name == "videomae":
            raise _chain_error(name, model_id, tried)
        if tried and tried[0][0] == "transformers":
            log.warning("[warn] transformers not installed, falling back to 2D path")
        else:
            reasons = "; ".join(why for _, why in tried)
            log.warning(f"[warn] VideoMAE not available ({reasons}), falling back to 2D path")
    if timm_names is None:
        timm_names = (model_id,) if name == "vit2d" and is_timm_name(model_id) else TIMM_NAMES
    bb = _timm_chain(timm_names, path if name == "vit2d" else None, tried, common)
    if bb is None:
        raise _chain_error(name, model_id if name == "auto" else f"timm/{timm_names[0]}", tried)
    if name == "auto":
        log.warning("[warn] Falling back to 2D path: collapsing clip_T frames with mean pooling." if mode == "clip"
                    else f"[warn] Falling back to 2D path: {num_frames} frames per clip embedded one by one "
                         f"({mode} mode), interpolated to every frame.")
    log.info(f"[info] Using 2D backbone: {bb.source}")
    return bb


def _videomae_chain(model_id, path, tried, common) -> Backbone | None:
    """VideoMAE from ``path``, then the local HF cache, then the hub (only when online)."""
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        tried.append(("transformers", f"not installed ({e}): pip install transformers"))
        return None
    from huggingface_hub import try_to_load_from_cache

    cache = hf_cache()
    attempts = [(f"VideoMAE from folder {path}", path, dict(local_files_only=True))] if path else []
    attempts.append((f"VideoMAE {model_id} from the Hugging Face cache", model_id,
                     dict(local_files_only=True, cache_dir=cache)))
    for what, src, kw in attempts:
        if src == model_id and not isinstance(try_to_load_from_cache(model_id, "config.json", cache_dir=cache), str):
            tried.append((what, f"not in the cache ({cache})"))  # decided without asking transformers
            continue
        try:
            return load_videomae(src, model_id, **common, **kw)
        except Exception as e:  # noqa: BLE001 - any failure moves the chain on; the reason is kept
            tried.append((what, _short(e)))
    if not _hub_online():
        tried.append((f"VideoMAE {model_id} from the Hugging Face hub", _OFFLINE))
        return None
    try:
        return load_videomae(model_id, model_id, **common, cache_dir=cache)
    except Exception as e:  # noqa: BLE001
        tried.append((f"VideoMAE {model_id} from the Hugging Face hub", _short(e)))
        return None


def _hf_chain(model_id, path, common) -> Backbone:
    """``backbone="hf"``: ``path`` (or ``model_id`` naming a folder), else the cache, else the hub when online."""
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"backbone='hf' needs transformers ({e}): pip install transformers") from None
    from huggingface_hub import try_to_load_from_cache

    if path is None and Path(model_id).expanduser().is_dir():
        path = str(Path(model_id).expanduser())
    tried: list[tuple[str, str]] = []
    if path:
        try:
            return load_hf(path, path, **common, local_files_only=True)
        except ValueError:  # an unsupported or remote-code checkpoint: no other source will do better
            raise
        except Exception as e:  # noqa: BLE001
            raise _chain_error("hf", model_id, [(f"checkpoint folder {path}", _short(e))], HF_FIXES) from None
    cache = hf_cache()
    if isinstance(try_to_load_from_cache(model_id, "config.json", cache_dir=cache), str):
        try:
            return load_hf(model_id, model_id, **common, local_files_only=True, cache_dir=cache)
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001
            tried.append((f"{model_id} from the Hugging Face cache", _short(e)))
    else:
        tried.append((f"{model_id} from the Hugging Face cache", f"not in the cache ({cache})"))
    if not _hub_online():
        tried.append((f"{model_id} from the Hugging Face hub", _OFFLINE))
    else:
        try:
            return load_hf(model_id, model_id, **common, cache_dir=cache)
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001
            tried.append((f"{model_id} from the Hugging Face hub", _short(e)))
    raise _chain_error("hf", model_id, tried, HF_FIXES)


def _timm_chain(names, file, tried, common) -> Backbone | None:
    """timm ViTs: from ``file`` when given (first name only), else each name from cache, then hub."""
    try:
        import timm  # noqa: F401
    except ImportError as e:
        tried.append(("timm", f"not installed ({e}): pip install timm"))
        return None
    if file:
        try:
            return load_timm(names[0], weights_file(Path(file)), **common)
        except Exception as e:  # noqa: BLE001
            tried.append((f"timm {names[0]} from {file}", _short(e)))
            return None
    cache = hf_cache()
    for n in names:
        try:
            cached = cached_file(n, cache)
            if cached is None and not _hub_online():
                tried.append((f"timm {n}", f"not in the Hugging Face cache ({cache}); hub: {_OFFLINE}"))
                continue
            return load_timm(n, cached, **common)
        except Exception as e:  # noqa: BLE001
            tried.append((f"timm {n}", _short(e)))
    return None


# --- offline behaviour, messages ----------------------------------------------------------------
_OFFLINE = "skipped: offline (HF_HUB_OFFLINE is set or huggingface.co is unreachable)"


@functools.lru_cache(maxsize=1)
def _hub_online() -> bool:
    """Decided once per process: HF_HUB_OFFLINE, else one 2-second TCP connect to the hub."""
    import huggingface_hub.constants as hf

    if hf.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return False
    url = urlparse(hf.ENDPOINT)
    ok = []

    def probe():  # in a thread, so a hanging DNS lookup cannot hold us past the timeout
        try:
            socket.create_connection((url.hostname, url.port or 443), timeout=2).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(2.5)
    return bool(ok)


def _chain_error(name: str, repo: str, tried: list[tuple[str, str]], fixes: str = FIXES) -> RuntimeError:
    lines = "\n".join(f"  - {what}: {why}" for what, why in tried)
    return RuntimeError(f"No backbone could be loaded (backbone={name!r}). Tried:\n{lines}\n" + fixes.format(repo=repo))


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"
