"""Backbones: pixels in, frame-aligned features out.

Legend: ``B`` batch, ``T`` frames in a window, ``S`` frames decoded per window, ``F`` frames per
clip (``num_frames``), ``C`` clips per window (``sliding`` mode, else 1), ``T'`` time steps per
clip (``F / tubelet`` for VideoMAE, ``F`` for a 2D ViT), ``N`` patch tokens per time step,
``K`` feature time points per window (1, ``T'`` or ``C*T'``), ``D`` width.

Every backbone reads ``S`` frames of a ``T``-frame window (``sample_positions``), embeds them into
``K`` compact vectors (``embed``: what the feature cache stores) and spreads those over the ``T``
frames (``to_frames``: no learned parameters). Modes:

- ``clip`` (the seed): one vector per window, the mean over every token, expanded to ``T``.
- ``tokens``: one vector per time step (VideoMAE: mean over space of the ``T'`` tubelet steps;
  2D: one per sampled frame), linearly interpolated to the ``T`` frames.
- ``sliding``: ``C = max(1, round(T / (2F)))`` clips, clip ``c`` sampling ``F`` frames uniformly
  from the ``c``-th of ``C`` equal consecutive sub-windows; ``K = C*T'`` time steps, interpolated.

``load_backbone("auto")`` follows the seed's chain: VideoMAE (``path`` folder, the local Hugging
Face cache, then the hub when online), then timm 2D ViTs (cache, then hub), then a RuntimeError
that lists what was tried and how to fix it. Offline it decides in seconds.

Example:
    >>> bb = load_backbone("tiny", img_size=64)  # doctest: +SKIP
    >>> bb(torch.zeros(2, 180, 3, 64, 64, dtype=torch.uint8)).shape  # doctest: +SKIP
    torch.Size([2, 180, 64])
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from kit.config import check_clip_geometry  # [robust hook] sizes a backbone cannot take
from kit.data.windows import uniform_indices
from kit.errors import BackboneError  # [robust hook] a user-facing error (one line on the CLI)
from kit.features import hub  # [robust hook] the real HTTP probe of the hub
from kit.log import setup_logging

DEFAULT_MODEL_ID = "MCG-NJU/videomae-base-finetuned-kinetics"
TIMM_NAMES = ("vit_small_patch14_dinov2.lvd142m", "vit_small_patch16_224.augreg_in21k_ft_in1k",
              "vit_base_patch16_224.augreg2_in21k_ft_in1k")
NAMES = ("auto", "videomae", "vit2d", "tiny")
MODES = ("clip", "tokens", "sliding")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # VideoMAE's training stats
FIXES = """Fixes (any one):
  - path= (RunConfig.backbone_path, --backbone_path): a VideoMAE folder saved with save_pretrained
    (backbone="vit2d": a timm weights file);
  - fill the Hugging Face cache on a machine with network, then copy it here (~/.cache/huggingface, or $HF_HOME):
        hf download {repo}
    (older huggingface_hub: huggingface-cli download {repo});
  - backbone="tiny": RANDOM weights, a smoke test of the pipeline, not a model."""

log = logging.getLogger("kit")


class Backbone(nn.Module):
    """One interface over VideoMAE (3D) and timm ViTs (2D); see the module docstring for modes.

    Attributes:
        name: ``videomae``, ``vit2d`` or ``tiny``. ``source``: checkpoint id, folder or timm name.
        is_3d, feature_dim (``D``), mean, std, img_size, num_frames (``F``), mode, random_init.
        fingerprint: changes whenever the features would (weights source, preprocessing, mode,
            sizes): the feature cache's key.
        autocast_dtype: e.g. ``torch.bfloat16`` to run the network under autocast on CUDA.
    """

    def __init__(self, model: nn.Module, *, name: str, is_3d: bool, feature_dim: int, mean, std,
                 img_size: int, num_frames: int, mode: str, freeze: bool, source: str, revision: str,
                 random_init: bool, fc_norm: nn.Module | None = None, tubelet: int = 1,
                 patch: int = 16, prefix_tokens: int = 0):
        super().__init__()
        check_clip_geometry(img_size, num_frames, patch, tubelet, name)  # [robust hook]
        self.model, self.fc_norm = model, fc_norm
        self.name, self.is_3d, self.feature_dim, self.mode = name, is_3d, feature_dim, mode
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.img_size, self.num_frames, self.source, self.random_init = img_size, num_frames, source, random_init
        self.tubelet, self.patch, self.prefix_tokens = tubelet, patch, prefix_tokens
        self.steps = num_frames // tubelet  # T'
        self.frozen, self.autocast_dtype = freeze, None
        self.register_buffer("_mean", torch.tensor(self.mean).view(3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std).view(3, 1, 1), persistent=False)
        key = json.dumps([name, source, revision, self.mean, self.std, img_size, num_frames, mode, random_init])
        self.fingerprint = f"{name}-{mode}-{img_size}px-{num_frames}f-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
        if freeze:
            self.requires_grad_(False)
        self.train(not freeze)

    # --- which frames -------------------------------------------------------------------------
    def num_clips(self, T: int) -> int:
        """``C``: clips per ``T``-frame window (1 unless ``mode == "sliding"``)."""
        return max(1, round(T / (2 * self.num_frames))) if self.mode == "sliding" else 1

    def sample_positions(self, T: int) -> torch.Tensor:
        """Window positions to decode, clip after clip. Shapes: ``(S,)`` with ``S = C*F``."""
        if T < 1:
            raise ValueError(f"window length T must be >= 1, got {T}")
        C = self.num_clips(T)
        edges = [(c * T) // C for c in range(C + 1)]
        return torch.cat([edges[c] + uniform_indices(edges[c + 1] - edges[c], self.num_frames)
                          for c in range(C)])

    def num_points(self, T: int) -> int:
        """``K``: vectors ``embed`` returns for a ``T``-frame window."""
        return 1 if self.mode == "clip" else self.num_clips(T) * self.steps

    def time_points(self, T: int) -> torch.Tensor:
        """Window position (in frames) of each of the ``K`` vectors: the centre of its frames."""
        pos = self.sample_positions(T).float()
        if self.mode == "clip":
            return pos.mean().view(1)
        return pos.view(-1, self.tubelet).mean(1)  # (C*T', tubelet) -> (C*T',)

    # --- features -------------------------------------------------------------------------------
    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """The model input: uint8 or [0, 1] float ``(B, S, 3, H, W)`` -> resized, normalized ``(B, S, 3, img, img)``."""
        x = frames.to(self._mean.device)
        if x.dtype == torch.uint8:
            x = x.float() / 255
        elif x.numel() and x.amax() > 1.5:  # a classic: 0-255 values passed as float
            raise ValueError(f"float frames must be in [0, 1], got max {x.amax().item():.1f}: "
                             "pass uint8 or divide by 255")
        else:
            x = x.float()
        if x.shape[-2:] != (self.img_size, self.img_size):
            size = (self.img_size, self.img_size)
            x = F.interpolate(x.flatten(0, 1), size=size, mode="bilinear", antialias=True,
                              align_corners=False).unflatten(0, x.shape[:2])
        return (x - self._mean) / self._std

    def _context(self) -> contextlib.ExitStack:
        """no_grad when frozen (not inference_mode: cached features may enter autograd later); autocast."""
        stack = contextlib.ExitStack()
        if self.frozen:
            stack.enter_context(torch.no_grad())
        if self.autocast_dtype is not None and self._mean.device.type == "cuda":
            stack.enter_context(torch.autocast("cuda", dtype=self.autocast_dtype))
        return stack

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Compact, cacheable features of the decoded frames of a window.

        Args:
            frames: the frames at ``sample_positions(T)``, uint8 or float in [0, 1]; resized to
                ``img_size`` when needed.

        Shapes:
            frames ``(B, S, 3, H, W)`` with ``S = C*F`` -> ``(B, K, D)`` float32.
        """
        _check_video(frames, "frames")
        B, S = frames.shape[:2]
        Fr = self.num_frames
        if S % Fr or (self.mode != "sliding" and S != Fr):
            want = f"a multiple of {Fr}" if self.mode == "sliding" else str(Fr)
            raise ValueError(f"embed expects S = {want} frames (mode={self.mode!r}), got {tuple(frames.shape)}")
        C = S // Fr
        with self._context():
            x = self.preprocess(frames)  # (B, S, 3, img, img)
            if self.is_3d:
                h = self.model(pixel_values=x.reshape(B * C, Fr, *x.shape[2:])).last_hidden_state  # (B*C, T'*N, D)
                if self.mode == "clip":
                    z = h.mean(1, keepdim=True)  # (B, 1, D)
                else:
                    z = h.reshape(B * C, self.steps, -1, h.shape[-1]).mean(2)  # (B*C, T', N, D) -> (B*C, T', D)
                if self.fc_norm is not None:
                    z = self.fc_norm(z)
                z = z.reshape(B, -1, z.shape[-1])  # (B, K, D)
            else:
                z = self.model(x.flatten(0, 1)).reshape(B, S, -1)  # (B*S, D) -> (B, S, D)
                if self.mode == "clip":
                    z = z.mean(1, keepdim=True)  # (B, 1, D): the seed's 2D mean pooling
        return z.float()

    def to_frames(self, emb: torch.Tensor, T: int) -> torch.Tensor:
        """Spreads ``K`` vectors over ``T`` frames: expansion (clip) or linear interpolation.

        Shapes:
            emb ``(B, K, D)`` -> ``(B, T, D)``; frames before the first (after the last) time
            point take its value.
        """
        K = self.num_points(T)
        if emb.ndim != 3 or emb.shape[1] != K:
            raise ValueError(f"to_frames expects (B, {K}, D) for T={T}, mode={self.mode!r}, got {tuple(emb.shape)}")
        if self.mode == "clip":
            return emb.expand(-1, T, -1)
        x = self.time_points(T).to(emb.device)  # (K,) non-decreasing
        t = torch.arange(T, device=emb.device, dtype=x.dtype)
        idx = torch.searchsorted(x, t, right=True)  # number of points <= t
        lo, hi = (idx - 1).clamp(0, K - 1), idx.clamp(0, K - 1)
        w = ((t - x[lo]) / (x[hi] - x[lo]).clamp(min=1e-6)).clamp(0, 1).to(emb.dtype)[None, :, None]
        return emb[:, lo] * (1 - w) + emb[:, hi] * w

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Frame-aligned features of whole windows.

        Shapes:
            video ``(B, T, 3, H, W)`` uint8 or float in [0, 1] -> ``(B, T, D)``.
        """
        _check_video(video, "video")
        T = video.shape[1]
        pos = self.sample_positions(T).to(video.device)
        return self.to_frames(self.embed(video[:, pos]), T)

    @torch.no_grad()
    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """Raw token features of the first clip of a window, for inspection.

        Shapes:
            video ``(B, T, 3, H, W)`` -> 3D: ``last_hidden_state (B, T'*N, D)`` (``(B, 1568, 768)``
            for VideoMAE-base); 2D: patch tokens per frame ``(B, F, N, D)`` (prefix tokens
            dropped). ``token_grid`` gives ``(T', h, w)`` with ``N = h*w``.
        """
        _check_video(video, "video")
        x = self.preprocess(video[:, uniform_indices(video.shape[1], self.num_frames).to(video.device)])
        if self.is_3d:
            return self.model(pixel_values=x).last_hidden_state
        h = self.model.forward_features(x.flatten(0, 1))[:, self.prefix_tokens:]  # (B*F, N, D)
        return h.reshape(x.shape[0], x.shape[1], *h.shape[1:])  # (B, F, N, D)

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """``(T', h, w)``: the token layout ``tokens`` returns."""
        side = self.img_size // self.patch
        return self.steps, side, side

    def train(self, mode: bool = True) -> "Backbone":
        """A frozen backbone stays in eval mode even inside a model put in training mode."""
        return super().train(mode and not self.frozen)

    def gradient_checkpointing_enable(self) -> None:
        """Trades compute for memory when fine-tuning (``freeze=False``)."""
        if self.is_3d:  # transformers 5 renamed it activation_checkpointing_enable
            enable = getattr(self.model, "activation_checkpointing_enable", None)
            (enable or self.model.gradient_checkpointing_enable)()
        else:
            self.model.set_grad_checkpointing(True)

    def summary(self) -> dict:
        """What was loaded and how it preprocesses: for notebook tables and run logs."""
        keys = ("name", "source", "is_3d", "feature_dim", "mode", "img_size", "num_frames", "mean", "std",
                "random_init", "frozen", "fingerprint")
        return {k: getattr(self, k) for k in keys} | {"parameters": sum(p.numel() for p in self.parameters())}

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, source={self.source!r}, mode={self.mode!r}, D={self.feature_dim}, "
                f"img_size={self.img_size}, num_frames={self.num_frames}, frozen={self.frozen}")


def _check_video(x: torch.Tensor, what: str) -> None:
    if x.ndim != 5 or x.shape[2] != 3:
        raise ValueError(f"{what} must be (B, T, 3, H, W) RGB frames, got shape {tuple(x.shape)}")


# --- loading ------------------------------------------------------------------------------------
def load_backbone(name: str = "auto", model_id: str = DEFAULT_MODEL_ID, path: str | os.PathLike | None = None,
                  mode: str = "tokens", img_size: int = 224, num_frames: int = 16, freeze: bool = True,
                  timm_names: tuple[str, ...] | None = None) -> Backbone:
    """Loads a backbone; ``auto`` follows the fallback chain of the module docstring.

    Args:
        name: ``auto`` (or ``""``), ``videomae`` (no fallback), ``vit2d`` (timm only) or ``tiny``
            (a small VideoMAE with RANDOM weights, seed 0: for smoke runs on CPU).
        model_id: the VideoMAE checkpoint id; for ``vit2d`` a timm name here picks that model.
        path: a VideoMAE folder (``save_pretrained`` layout) for ``auto``/``videomae``; for
            ``vit2d`` a timm weights file (``.safetensors``/``.pth``) or a folder holding one.
        mode: ``clip``, ``tokens`` or ``sliding``.
        img_size: input resolution (``tiny``: a multiple of 16).
        num_frames: frames per clip ``F``.
        freeze: eval mode, no gradients, forward under ``torch.no_grad``.
        timm_names: the 2D models to try, in order (default ``TIMM_NAMES``).

    Raises:
        RuntimeError: nothing could be loaded; the message lists each attempt and the fixes.
    """
    setup_logging()
    name = name or "auto"
    if name not in NAMES or mode not in MODES:
        raise ValueError(f"backbone name must be one of {NAMES} and mode one of {MODES}, got {name!r}, {mode!r}")
    if img_size < 1 or num_frames < 1:
        raise ValueError(f"img_size and num_frames must be >= 1, got {img_size}, {num_frames}")
    if path is not None and str(path) and not Path(path).exists():
        raise FileNotFoundError(f"backbone path {path} does not exist: fix backbone_path or leave it empty")
    path = str(path) if path is not None and str(path) else None
    common = dict(mode=mode, img_size=img_size, num_frames=num_frames, freeze=freeze)
    if name == "tiny":
        return _load_tiny(**common)
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
        timm_names = (model_id,) if name == "vit2d" and _is_timm_name(model_id) else TIMM_NAMES
    bb = _timm_chain(timm_names, path if name == "vit2d" else None, tried, common)
    if bb is None:
        raise _chain_error(name, model_id if name == "auto" else f"timm/{timm_names[0]}", tried)
    if name == "auto":
        log.warning("[warn] Falling back to 2D path: collapsing clip_T frames with mean pooling." if mode == "clip"
                    else f"[warn] Falling back to 2D path: {num_frames} frames per clip embedded one by one "
                         f"({mode} mode), interpolated to T.")
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

    cache = _hf_cache()
    attempts = [(f"VideoMAE from folder {path}", path, dict(local_files_only=True))] if path else []
    attempts.append((f"VideoMAE {model_id} from the Hugging Face cache", model_id,
                     dict(local_files_only=True, cache_dir=cache)))
    for what, src, kw in attempts:
        if src == model_id and not isinstance(try_to_load_from_cache(model_id, "config.json", cache_dir=cache), str):
            tried.append((what, f"not in the cache ({cache})"))  # decided without asking transformers
            continue
        try:
            return _load_videomae(src, model_id, **common, **kw)
        except Exception as e:  # noqa: BLE001 - any failure moves the chain on; the reason is kept
            tried.append((what, _short(e)))
    if not _hub_online():
        tried.append((f"VideoMAE {model_id} from the Hugging Face hub", _OFFLINE))
        return None
    try:
        return _load_videomae(model_id, model_id, **common, cache_dir=cache)
    except Exception as e:  # noqa: BLE001
        tried.append((f"VideoMAE {model_id} from the Hugging Face hub", _short(e)))
        hub.record_failure(e)  # [robust hook] a network failure: the rest of the chain stays offline
        return None


def _load_videomae(src: str, model_id: str, *, mode, img_size, num_frames, freeze, **hf_kw) -> Backbone:
    """One VideoMAE checkpoint; a fine-tuned one keeps its ``fc_norm`` (VideoMAEModel drops it)."""
    from transformers import AutoConfig, VideoMAEForVideoClassification, VideoMAEModel

    config = AutoConfig.from_pretrained(src, **hf_kw)
    if config.model_type != "videomae":
        raise ValueError(f"{src} holds a {config.model_type!r} model, not VideoMAE")
    if (config.image_size, config.num_frames) != (img_size, num_frames):
        log.warning(f"[warn] {src} was trained on {config.num_frames} frames of {config.image_size}px; running it "
                    f"on {num_frames} x {img_size}px (its fixed sin-cos positions are rebuilt for that grid)")
        config.image_size, config.num_frames = img_size, num_frames
    mean, std = _processor_stats(src, hf_kw)
    classify = config.use_mean_pooling and "VideoMAEForVideoClassification" in (config.architectures or [])
    cls = VideoMAEForVideoClassification if classify else VideoMAEModel
    model, info = cls.from_pretrained(src, config=config, output_loading_info=True, attn_implementation="sdpa",
                                      dtype=torch.float32, **hf_kw)
    if info["missing_keys"]:
        log.warning(f"[warn] {src}: weights missing (randomly initialised): {sorted(info['missing_keys'])[:8]}")
    log.info("[info] Using VideoMAE (3D) backbone from Hugging Face")
    log.info(f"[info] Model: {model_id if src == model_id else src}")
    log.info(f"[info] Preprocessing: {num_frames} frames at {img_size}px, mean={mean}, std={std} (checkpoint's "
             f"image processor); pooled features {'go through fc_norm' if classify else 'have no fc_norm'}")
    revision = str(getattr(config, "_commit_hash", None)) if src == model_id else _file_identity(Path(src))
    return Backbone(model.videomae if classify else model, name="videomae", is_3d=True,
                    feature_dim=config.hidden_size, mean=mean, std=std, img_size=img_size, num_frames=num_frames,
                    mode=mode, freeze=freeze, source=model_id if src == model_id else src, revision=revision,
                    random_init=False, fc_norm=model.fc_norm if classify else None, tubelet=config.tubelet_size,
                    patch=_int(config.patch_size))


def _processor_stats(src: str, hf_kw: dict) -> tuple[tuple, tuple]:
    """mean/std from the checkpoint's image-processor config (class defaults are 0.5 in transformers 5)."""
    from transformers import AutoImageProcessor

    try:
        proc = AutoImageProcessor.from_pretrained(src, **hf_kw)
        mean, std = proc.image_mean, proc.image_std
        return (tuple(mean) if isinstance(mean, (list, tuple)) else (mean,) * 3,
                tuple(std) if isinstance(std, (list, tuple)) else (std,) * 3)
    except Exception as e:  # noqa: BLE001
        log.warning(f"[warn] {src}: no usable image-processor config ({_short(e)}); using the ImageNet "
                    f"mean/std VideoMAE was trained with")
        return IMAGENET_MEAN, IMAGENET_STD


def _load_tiny(*, mode, img_size, num_frames, freeze) -> Backbone:
    """A 2-layer, 64-wide VideoMAE with RANDOM weights (seed 0, so every run gets the same ones)."""
    from transformers import VideoMAEConfig, VideoMAEModel

    if img_size % 16 or num_frames % 2:
        raise ValueError(f"tiny needs img_size a multiple of 16 and an even num_frames, got {img_size}, {num_frames}")
    config = VideoMAEConfig(image_size=img_size, patch_size=16, num_frames=num_frames, tubelet_size=2,
                            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, fc_norm = VideoMAEModel(config), nn.LayerNorm(64)
    log.warning("[warn] Using the tiny backbone: RANDOM weights (2-layer VideoMAE, seed 0); its features carry "
                "no meaning: for smoke tests of the pipeline only")
    return Backbone(model, name="tiny", is_3d=True, feature_dim=64, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    img_size=img_size, num_frames=num_frames, mode=mode, freeze=freeze, source="tiny",
                    revision="seed0-h64-l2-i256", random_init=True, fc_norm=fc_norm, tubelet=2, patch=16)


def _timm_chain(names, file, tried, common) -> Backbone | None:
    """timm ViTs: from ``file`` when given (first name only), else each name from cache, then hub."""
    try:
        import timm  # noqa: F401
    except ImportError as e:
        tried.append(("timm", f"not installed ({e}): pip install timm"))
        return None
    if file:
        try:
            weights = _weights_file(Path(file))
            return _load_timm(names[0], weights, _file_identity(Path(weights)), **common)
        except Exception as e:  # noqa: BLE001
            tried.append((f"timm {names[0]} from {file}", _short(e)))
            return None
    cache = _hf_cache()
    for n in names:
        try:
            cached = _timm_cached_file(n, cache)
            if cached is None and not _hub_online():
                tried.append((f"timm {n}", f"not in the Hugging Face cache ({cache}); hub: {_OFFLINE}"))
                continue
            return _load_timm(n, cached, "hf-hub", **common)
        except Exception as e:  # noqa: BLE001
            tried.append((f"timm {n}", _short(e)))
            hub.record_failure(e)  # [robust hook]
    return None


def _load_timm(timm_name: str, file: str | None, revision: str, *, mode, img_size, num_frames, freeze) -> Backbone:
    """A timm ViT at the kit's img_size; weights from ``file`` (timm's local-file mechanism) or the hub."""
    import timm

    model = timm.create_model(timm_name, pretrained=True, num_classes=0, img_size=img_size,
                              pretrained_cfg_overlay=dict(file=file) if file else None)
    data = timm.data.resolve_data_config({}, model=model)  # mean/std only: its input_size is not ours
    return Backbone(model, name="vit2d", is_3d=False, feature_dim=model.num_features, mean=data["mean"],
                    std=data["std"], img_size=img_size, num_frames=num_frames, mode=mode, freeze=freeze,
                    source=timm_name, revision=revision, random_init=False, patch=_int(model.patch_embed.patch_size),
                    prefix_tokens=getattr(model, "num_prefix_tokens", 1))


def _timm_cached_file(timm_name: str, cache: str) -> str | None:
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


def _weights_file(path: Path) -> str:
    if path.is_file():
        return str(path)
    for fname in ("model.safetensors", "pytorch_model.bin"):
        if (path / fname).is_file():
            return str(path / fname)
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {path}")


def _is_timm_name(model_id: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    return timm.is_model(model_id)


# --- offline behaviour, messages ----------------------------------------------------------------
_OFFLINE = "skipped: offline (HF_HUB_OFFLINE is set or huggingface.co is unreachable)"


def _hf_cache() -> str:
    """The Hugging Face hub cache folder ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    import huggingface_hub.constants as hf

    return str(hf.HF_HUB_CACHE)


def _hub_online() -> bool:
    """Decided once per process by a real HTTP probe of the hub (kit.features.hub)."""  # [robust hook]
    return hub.hub_online()


def _chain_error(name: str, repo: str, tried: list[tuple[str, str]]) -> RuntimeError:
    lines = "\n".join(f"  - {what}: {why}" for what, why in tried)
    return BackboneError(f"No backbone could be loaded (backbone={name!r}). Tried:\n{lines}\n"  # [robust hook]
                         + FIXES.format(repo=repo))


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


def _file_identity(path: Path) -> str:
    """Path plus modification times: a re-saved checkpoint gets a new feature-cache key."""
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    return f"{path.resolve()}@{max((p.stat().st_mtime_ns for p in files), default=0)}"


def _int(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
