"""The windowed path: backbone + head on windows of ``train_T`` frames (fine-tuning; the original script).

Used when the backbone is trained (``freeze_backbone=False``: decoded windows go through the
trainable backbone and the head together) or when asked for (``pipeline="windows"``, e.g. for the
original script's exact behaviour: ``visual_mode="clip"`` samples 16 frames uniformly from each
window). A frozen backbone's window features are cached (``kit.features.cache``) and reused every
epoch. Validation and evaluation predict every frame with windows of ``val_T`` overlapping by half;
overlapping predictions are averaged with weights that fall towards each window's edges (a frame
near an edge has seen less context, through the TCN's zero padding).

Legend: ``B`` windows in a batch, ``T`` frames per window, ``S`` decoded frames per window,
``K`` backbone vectors per window, ``D`` feature width, ``L`` frames in a video, ``C`` classes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kit.config import RunConfig, resolve_path
from kit.data.contract import VideoRecord
from kit.data.labels import IGNORE_INDEX
from kit.data.video import video_key
from kit.data.windows import Window, WindowDataset, collate, eval_windows, jittered, shuffled, train_windows
from kit.features.backbones import Backbone
from kit.features.cache import FeatureCache
from kit.features.extract import precision
from kit.temporal.sequences import VideoPrediction


def feature_cache(backbone: Backbone, cfg: RunConfig, output_dir=None) -> FeatureCache | None:
    """The run's window-feature cache (frozen backbone and ``feature_cache=True``), else None.

    Keyed by the backbone's fingerprint and the precision its features are computed in.
    """
    if not (cfg.freeze_backbone and cfg.feature_cache):
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    directory = resolve_path(output_dir or cfg.output_dir) / ".feature_cache"
    return FeatureCache(f"{backbone.fingerprint}|{precision(backbone, device)}", directory)


class FrameLabeler(nn.Module):
    """``video or cached features -> backbone -> head -> per-stage logits``.

    One module so that a trainable backbone and the head share one DDP wrapper and one optimizer.
    """

    def __init__(self, backbone: Backbone, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def tasks(self) -> list[str]:
        return list(self.head.tasks)

    def forward(self, emb: torch.Tensor | None, video: torch.Tensor | None, T: int,
                pose: torch.Tensor | None, mask: torch.Tensor, loss_kw: dict | None = None):
        """Per-stage logits, or with ``loss_kw`` the head's training loss (``MultiTaskModel.forward``).

        Shapes: emb (B, K, D) or video (B, S, 3, H, W); pose (B, T, J, 3); mask (B, T).
        """
        if emb is None:
            emb = self.backbone.embed(video)  # (B, K, D)
        visual = self.backbone.to_frames(emb, T)  # (B, T, D)
        return self.head(visual.float(), pose, mask, loss_kw=loss_kw)

    def checkpoint_state(self) -> dict:
        """What a checkpoint keeps: the head, and the backbone only when it is being trained.

        A frozen backbone is rebuilt from its source (``load_backbone``), so a VideoMAE-base run
        does not write its 86 M unchanged weights into every checkpoint.
        """
        return {"head": self.head.state_dict(), "temporal_model": self.head.temporal_model,
                "backbone": {} if self.backbone.frozen else self.backbone.state_dict()}

    def load_checkpoint_state(self, state: dict) -> None:
        from kit.temporal.model import check_temporal_model

        check_temporal_model(state, self.head.temporal_model)
        self.head.load_state_dict(state["head"])
        if state["backbone"]:
            self.backbone.load_state_dict(state["backbone"])


class CachedWindows(torch.utils.data.Dataset):
    """A :class:`WindowDataset` that skips decoding windows whose features are already cached.

    Each item gains ``feat_key`` (the cache key, ``""`` without a cache). Items of cached windows
    carry no video (``(0, 3, H, W)``): epochs after the first read no video at all.
    """

    def __init__(self, records: list[VideoRecord], vocab: dict, windows: list[Window], backbone: Backbone,
                 cache: FeatureCache | None):
        self.records, self.backbone, self.cache = records, backbone, cache
        kw = dict(positions=backbone.sample_positions, img_size=backbone.resize)
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
    """:func:`kit.data.windows.collate`, but videos only of the items that have one (``video_rows``)."""
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


def edge_weights(T: int) -> np.ndarray:
    """``(T,)`` triangular weights, highest in the window's middle: how much a window's prediction of
    a frame counts where windows overlap."""
    t = np.arange(T)
    return np.minimum(t + 1, T - t).astype(np.float64)


@torch.no_grad()
def predict_videos(labeler: FrameLabeler, records: list[VideoRecord], vocab: dict[str, list[str]],
                   T: int, device: torch.device, cache: FeatureCache | None = None,
                   batch_size: int = 2, progress: bool = False) -> list[VideoPrediction]:
    """Predicts every frame of every video with windows of ``T`` that cover it (edge-weighted average)."""
    labeler.eval()
    tasks = list(labeler.head.tasks)
    windows = eval_windows([r.num_frames for r in records], T)
    ds = CachedWindows(records, vocab, windows, labeler.backbone, cache)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, collate_fn=collate_windows)
    sums = {(v, t): np.zeros((r.num_frames, len(vocab[t])), np.float64)
            for v, r in enumerate(records) for t in tasks}
    weights = [np.zeros(r.num_frames) for r in records]
    labels = {(v, t): np.full(r.num_frames, IGNORE_INDEX, np.int64) for v, r in enumerate(records) for t in tasks}
    edge = edge_weights(T)
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
            we = edge[real][:, None]
            weights[w.video][frames] += we[:, 0]
            for t in tasks:
                p = torch.softmax(stages[-1][t][b].float(), -1).cpu().numpy()[real]  # (T_real, C)
                sums[w.video, t][frames] += p * we
                labels[w.video, t][frames] = batch["labels"][t][b].numpy()[real]
    out = []
    for v, r in enumerate(records):
        c = np.maximum(weights[v], 1e-12)[:, None]
        out.append(VideoPrediction(r.stem, {t: sums[v, t] / c for t in tasks}, {t: labels[v, t] for t in tasks}))
    return out


class WindowPath:
    """What the training loop needs from the windowed path: the model, the data, a step, predictions."""

    unit = "windows"

    def __init__(self, cfg: RunConfig, backbone: Backbone, head: nn.Module, train_records: list[VideoRecord],
                 vocab: dict):
        self.cfg, self.backbone, self.records = cfg, backbone, train_records
        self.model = FrameLabeler(backbone, head)
        self.cache = feature_cache(backbone, cfg)
        self.lengths = [r.num_frames for r in train_records]
        self.grid = train_windows(self.lengths, cfg.train_T, cfg.train_stride)
        self.dataset = CachedWindows(train_records, vocab, self.grid, backbone, self.cache)
        self.collate = collate_windows

    def set_epoch(self, epoch: int) -> None:
        """A frozen backbone trains on the fixed grid (cacheable), shuffled; a trained one on jittered
        windows, every frame equally likely to be in one."""
        order = shuffled(self.grid, self.cfg.seed, epoch)
        self.dataset.set_windows(order if self.cfg.freeze_backbone
                                 else jittered(order, self.lengths, self.cfg.seed, epoch))

    def forward(self, model: nn.Module, batch: dict, acc, loss_kw: dict | None = None):
        emb, video = None, batch["video"]
        if self.cfg.freeze_backbone:  # features without a graph, from the cache when there is one
            with torch.no_grad(), acc.autocast():
                emb = (cached_embeddings(self.backbone, batch, self.cache, acc.device) if self.cache is not None
                       else self.backbone.embed(video).float())
            video = None
        return model(emb, video, self.cfg.train_T, batch["pose"], batch["mask"], loss_kw=loss_kw)

    def predict(self, model: nn.Module, records: list[VideoRecord], vocab: dict, device,
                progress: bool = False) -> list[VideoPrediction]:
        return predict_videos(model, records, vocab, self.cfg.val_T, device, self.cache,
                              batch_size=self.cfg.batch_size, progress=progress)

    def counters(self) -> tuple[int, int]:
        return (self.cache.hits, self.cache.misses) if self.cache is not None else (0, 0)
