"""Backbone + head as one module, cached features, and full-video prediction.

Shared by training (validation) and evaluation, so both predict exactly the same way.

Legend: ``B`` windows in a batch, ``T`` frames per window, ``S`` decoded frames per window,
``K`` compact backbone time steps, ``D`` feature width, ``L`` frames in a video, ``C`` classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kit.features.backbones import Backbone, load_backbone
from kit.features.cache import FeatureCache
from kit.config import RunConfig, resolve_path
from kit.data import IGNORE_INDEX, VideoRecord, video_key
from kit.data.windows import WindowDataset, collate
from kit.data.windows import Window, eval_windows


def mixed_precision(choice: str) -> str:
    """``auto`` -> bf16 on a GPU with native bf16 (Ampere and newer), fp16 on older GPUs, no on CPU."""
    if choice != "auto":
        return choice
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def backbone_for(cfg: RunConfig, freeze: bool | None = None) -> Backbone:
    """The backbone a config asks for (``cfg.resolved_backbone``: tiny on the demo data).

    Its forward runs in the run's mixed precision on a GPU, in training, validation and
    evaluation alike, so cached features mean the same thing wherever they were computed.
    """
    backbone = load_backbone(cfg.resolved_backbone, model_id=cfg.model_id, path=cfg.backbone_path or None,
                             mode=cfg.visual_mode, img_size=cfg.img_size, num_frames=cfg.num_frames,
                             freeze=cfg.freeze_backbone if freeze is None else freeze)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    backbone.autocast_dtype = dtypes.get(mixed_precision(cfg.mixed_precision))
    return backbone


def feature_cache(backbone: Backbone, cfg: RunConfig, output_dir=None) -> FeatureCache | None:
    """The run's feature cache (frozen backbone and ``feature_cache=True``), else None.

    Keyed by the backbone's fingerprint and the precision its features are computed in.
    """
    if not (cfg.freeze_backbone and cfg.feature_cache):
        return None
    precision = str(backbone.autocast_dtype) if torch.cuda.is_available() else "float32"
    directory = resolve_path(output_dir or cfg.output_dir) / ".feature_cache"
    return FeatureCache(f"{backbone.fingerprint}|{precision}", directory)


class FrameLabeler(nn.Module):
    """``video or cached features -> backbone -> head -> per-stage logits``.

    One module so that a trainable backbone and the head share one DDP wrapper and one optimizer.
    """

    def __init__(self, backbone: Backbone, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, emb: torch.Tensor | None, video: torch.Tensor | None, T: int,
                pose: torch.Tensor | None, mask: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Shapes: emb (B, K, D) or video (B, S, 3, H, W); pose (B, T, J, 3); mask (B, T)."""
        if emb is None:
            emb = self.backbone.embed(video)  # (B, K, D)
        visual = self.backbone.to_frames(emb, T)  # (B, T, D)
        return self.head(visual.float(), pose, mask)

    def checkpoint_state(self) -> dict:
        """What a checkpoint keeps: the head, and the backbone only when it is being trained.

        A frozen backbone is rebuilt from its source (``load_backbone``), so a VideoMAE-base run
        does not write its 86 M unchanged weights into every checkpoint.
        """
        return {"head": self.head.state_dict(),
                "backbone": {} if self.backbone.frozen else self.backbone.state_dict()}

    def load_checkpoint_state(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        if state["backbone"]:
            self.backbone.load_state_dict(state["backbone"])


class CachedWindows(torch.utils.data.Dataset):
    """A :class:`WindowDataset` that skips decoding windows whose features are already cached.

    Each item gains ``feat_key`` (the cache key, ``""`` without a cache). Items of cached windows
    carry no video (``(0, 3, H, W)``): epochs after the first read no video at all.
    """

    def __init__(self, records: list[VideoRecord], vocab: dict, windows: list[Window],
                 backbone: Backbone, img_size: int, cache: FeatureCache | None):
        self.records, self.backbone, self.cache = records, backbone, cache
        kw = dict(positions=backbone.sample_positions, img_size=img_size)
        self.sampled = WindowDataset(records, vocab, windows, decode="sampled", **kw)
        self.bare = WindowDataset(records, vocab, windows, decode="none", **kw)
        self._ids = {}

    @property
    def windows(self) -> list[Window]:
        return self.sampled.windows

    def set_windows(self, windows: list[Window]) -> None:
        self.sampled.windows = self.bare.windows = list(windows)

    def __len__(self) -> int:
        return len(self.sampled)

    def key(self, i: int) -> str:
        if self.cache is None:
            return ""
        w = self.windows[i]
        rec = self.records[w.video]
        if rec.video_path not in self._ids:
            self._ids[rec.video_path] = video_key(rec.video_path)  # path|size|mtime_ns
        frames = w.decoded(self.backbone.sample_positions(w.T), rec.num_frames)  # what the dataset decodes
        return self.cache.key(self._ids[rec.video_path], frames)

    def __getitem__(self, i: int) -> dict:
        key = self.key(i)
        item = (self.bare if key and key in self.cache else self.sampled)[i]
        item["feat_key"] = key
        return item


def collate_windows(items: list[dict]) -> dict:
    """:func:`kit.data.collate`, but videos only of the items that have one (``video_rows``)."""
    rows = [i for i, it in enumerate(items) if it["video"].shape[0] > 0]
    videos = [items[i]["video"] for i in rows]
    batch = collate([{k: v for k, v in it.items() if k not in ("video", "feat_key")} for it in items])
    batch["video"] = torch.stack(videos) if videos else None  # (B', S, 3, H, W)
    batch["video_rows"] = rows
    batch["feat_key"] = [it["feat_key"] for it in items]
    return batch


@torch.no_grad()
def cached_embeddings(backbone: Backbone, batch: dict, cache: FeatureCache | None,
                      device: torch.device) -> torch.Tensor | None:
    """``(B, K, D)`` features for a batch from the cache, embedding (and caching) the missing ones.

    Returns None when there is no cache (the caller runs the backbone inside the model).
    """
    if cache is None:
        return None
    keys = batch["feat_key"]
    out: list[torch.Tensor | None] = [cache.get(k) for k in keys]
    if batch["video"] is not None and any(out[i] is None for i in batch["video_rows"]):
        emb = backbone.embed(batch["video"].to(device)).float()  # (B', K, D)
        for row, i in enumerate(batch["video_rows"]):
            if out[i] is None:
                cache.put(keys[i], emb[row])
                out[i] = emb[row].cpu()
    if any(f is None for f in out):  # a window loaded without video whose features then vanished
        raise RuntimeError("cached features disappeared while a batch was loading (was "
                           f"{cache.dir} deleted during training?); run again to recompute them")
    return torch.stack(out).to(device)  # (B, K, D)


@dataclass
class VideoPrediction:
    """Per-frame class probabilities of one video, averaged over overlapping windows."""

    stem: str
    probs: dict[str, np.ndarray]  # {task: (L, C)}
    labels: dict[str, np.ndarray]  # {task: (L,)} ground-truth class index, IGNORE_INDEX unlabeled

    def pred(self, task: str) -> np.ndarray:
        return self.probs[task].argmax(1)


@torch.no_grad()
def predict_videos(labeler: FrameLabeler, records: list[VideoRecord], vocab: dict[str, list[str]],
                   T: int, img_size: int, device: torch.device, cache: FeatureCache | None = None,
                   batch_size: int = 2, progress: bool = False) -> list[VideoPrediction]:
    """Predicts every frame of every video with windows of ``T`` that cover it (overlaps averaged)."""
    labeler.eval()
    tasks = list(labeler.head.tasks)
    windows = eval_windows([r.num_frames for r in records], T)
    ds = CachedWindows(records, vocab, windows, labeler.backbone, img_size, cache)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, collate_fn=collate_windows)
    sums = {(v, t): np.zeros((r.num_frames, len(vocab[t])), np.float64)
            for v, r in enumerate(records) for t in tasks}
    counts = [np.zeros(r.num_frames) for r in records]
    labels = {(v, t): np.full(r.num_frames, IGNORE_INDEX, np.int64) for v, r in enumerate(records) for t in tasks}
    if progress:
        from tqdm.auto import tqdm
        loader = tqdm(loader, desc="predict", leave=False)
    for batch in loader:
        emb = cached_embeddings(labeler.backbone, batch, cache, device)
        video = None if emb is not None else batch["video"].to(device)
        pose = batch["pose"].to(device)  # zeros (masked) for videos without keypoints
        mask = batch["mask"].to(device)
        stages = labeler(emb, video, T, pose, mask)
        for b, w in enumerate(batch["window"]):
            w = ds.windows[int(w)]
            real = batch["mask"][b].numpy()
            frames = batch["frames"][b].numpy()[real]
            counts[w.video][frames] += 1
            for t in tasks:
                p = torch.softmax(stages[-1][t][b].float(), -1).cpu().numpy()[real]  # (T_real, C)
                sums[w.video, t][frames] += p
                labels[w.video, t][frames] = batch["labels"][t][b].numpy()[real]
    out = []
    for v, r in enumerate(records):
        c = np.maximum(counts[v], 1)[:, None]
        out.append(VideoPrediction(r.stem, {t: sums[v, t] / c for t in tasks}, {t: labels[v, t] for t in tasks}))
    return out
