"""Whole-video feature extraction: each video decoded once, each clip embedded once, per-frame features out.

For every video: ONE sequential decode pass (``kit.data.stream.iter_frames``, the frames clips use
given the backbone's geometry as they are decoded, the others decoded only), clips of ``num_frames`` frames every ``frame_step`` frames
tiling the video (``Backbone.clip_starts``), batches of ``batch_size`` clips through the backbone,
then the clips' vectors spread to one column per frame (``Backbone.spread``) and written as
``<stem>.npy`` ``(D, L)`` into a :class:`kit.features.store.FeatureStore`. A decoding thread keeps the
next frames coming while the backbone runs. Memory is bounded by one batch of clips plus the
clips' vectors (``C x K x D`` floats, 83 MB for an hour at 30 fps with VideoMAE-base tokens and
``frame_step`` 2), never the video: the output array is written in chunks of frames.

Resumable: videos whose features are current are skipped; a killed extraction leaves only a hidden
``.<stem>.npy.partial`` (removed and redone next time), never a file that looks complete. Several
processes (``accelerate launch -m kit extract``, ``torchrun``) share the videos by rank.

Legend: ``F`` frames per clip, ``C`` clips, ``K`` vectors per clip, ``D`` width, ``L`` frames.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from kit.config import RunConfig, resolve_path
from kit.data.contract import VideoRecord
from kit.data.stream import iter_frames
from kit.data.video import DataError, probe_video, problem
from kit.features.backbones import Backbone, load_backbone
from kit.features.store import FeatureStore, write_info

log = logging.getLogger("kit")
CHUNK = 4096  # frames per write of the output array


# Clips per forward pass by device (kit bench, backbone section): on a CPU a batch of 4 VideoMAE-base clips
# needs about 4x the activations of 1 for no measured speed gain; a GPU needs batches to fill it.
CLIP_BATCH = {"cpu": 1, "cuda": 8}


def clip_batch_for(device: str | torch.device | None = None) -> int:
    """The default clips per forward pass on ``device`` (default: CUDA when available, else CPU)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return CLIP_BATCH.get(device.type, CLIP_BATCH["cuda"])


def mixed_precision(choice: str) -> str:
    """``auto`` -> bf16 on a GPU with native bf16 (Ampere and newer), fp16 on older GPUs, no on CPU."""
    if choice != "auto":
        return choice
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def backbone_for(cfg: RunConfig, freeze: bool | None = None) -> Backbone:
    """The backbone a config asks for (``cfg.resolved_backbone``: tiny on the demo data).

    Its forward runs in the run's mixed precision on a GPU, in extraction, training and evaluation
    alike, so stored features mean the same thing wherever they were computed.
    """
    backbone = load_backbone(cfg.resolved_backbone, model_id=cfg.model_id, path=cfg.backbone_path or None,
                             mode=cfg.visual_mode, img_size=cfg.img_size, num_frames=cfg.num_frames,
                             frame_step=cfg.frame_step, resize_mode=cfg.resize_mode,
                             freeze=cfg.freeze_backbone if freeze is None else freeze)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    backbone.autocast_dtype = dtypes.get(mixed_precision(cfg.mixed_precision))
    return backbone


def precision(backbone: Backbone, device: torch.device | str) -> str:
    """What the backbone computes in on ``device``: ``fp32``, or the autocast dtype on CUDA."""
    if torch.device(device).type != "cuda" or backbone.autocast_dtype is None:
        return "fp32"
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}[backbone.autocast_dtype]


def store_for(backbone: Backbone, videos_dir: str | Path, output_dir: str | Path) -> FeatureStore:
    """The store of this backbone's features for the videos in ``videos_dir`` (each video's sidecar says
    the precision it was computed in: fp32 on a CPU, the run's mixed precision on a GPU)."""
    return FeatureStore.at(output_dir, videos_dir, backbone.fingerprint)


def shard() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the launcher's environment (accelerate, torchrun)."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


@dataclass
class Extracted:
    """What :func:`extract` did for one video."""

    stem: str
    frames: int
    clips: int
    seconds: float  # 0 when skipped
    skipped: bool  # features were current

    def __str__(self) -> str:
        if self.skipped:
            return (f"{self.stem}: features already current in the store, not extracted again "
                    "(the table below is from the extraction that made them)")
        return f"{self.stem}: {self.frames} frames extracted now, {self.clips} clips in {self.seconds:.1f} s"


def extract(records: Iterable[VideoRecord], backbone: Backbone, store: FeatureStore, *, batch_size: int | None = None,
            dtype: str = "float16", device: str | torch.device | None = None, progress: bool | Callable = True,
            rank: int = 0, world: int = 1) -> list[Extracted]:
    """Extracts every video whose features in ``store`` are not current; this process does ``rank::world``.

    Args:
        records: the videos (``VideoRecord``s with a ``video_path``).
        backbone: frozen; moved to ``device`` (default CUDA when available).
        store: where ``<stem>.npy`` and ``<stem>.json`` go (its manifest is created if needed).
        batch_size: clips per forward pass (None: :func:`clip_batch_for` the device).
        dtype: ``float16`` or ``float32`` for the stored arrays.
        progress: a tqdm bar over the frames; or a callable ``progress(total=frames, desc="extract")``
            giving an object with ``update(n)`` and ``close()`` (a notebook's own view).
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch_size = batch_size or clip_batch_for(device)
    backbone.to(device).eval()
    store.init(_manifest_backbone(backbone), dtype)
    mine = [r for i, r in enumerate(records) if i % world == rank]
    todo = {r.stem for r in mine if not store.is_current(r.stem, r.video_path)}
    bar = None
    frames = sum(r.num_frames for r in mine if r.stem in todo)
    if callable(progress) and todo:
        bar = progress(total=frames, desc="extract")
    elif progress and todo:
        from tqdm.auto import tqdm
        bar = tqdm(total=frames, unit="frame", unit_scale=True,
                   desc="extract", dynamic_ncols=True, leave=False)
    done = []
    try:
        for r in mine:  # in the given order, skipped ones included
            if r.stem not in todo:
                done.append(Extracted(r.stem, r.num_frames, 0, 0.0, True))
                continue
            t0 = time.perf_counter()
            info = extract_video(backbone, r.video_path, store, r.stem, batch_size=batch_size, dtype=dtype,
                                 device=device, bar=bar)
            done.append(Extracted(r.stem, info["num_frames"], info["clips"], time.perf_counter() - t0, False))
    finally:
        if bar is not None:
            bar.close()
    return done


@torch.no_grad()
def extract_video(backbone: Backbone, video_path: str | Path, store: FeatureStore, stem: str, *,
                  batch_size: int | None = None, dtype: str = "float16", device: torch.device | None = None,
                  bar=None) -> dict:
    """One video: decode once, embed its clips, write ``<stem>.npy`` ``(D, L)`` and its sidecar."""
    device = device or next(backbone.parameters()).device
    batch_size = batch_size or clip_batch_for(device)
    meta = probe_video(video_path)
    t0 = time.perf_counter()
    points: list[torch.Tensor] = []  # (B, K, D) per batch, on the CPU
    batch: list[np.ndarray] = []
    L = 0
    for clip, L in _clips(video_path, backbone, bar):
        batch.append(clip)
        if len(batch) == batch_size:
            points.append(_embed(backbone, batch, device))
            batch = []
    if batch:
        points.append(_embed(backbone, batch, device))
    if L != meta.num_frames:  # the sequential pass is the truth; the probe said otherwise
        raise DataError.of([problem(video_path, f"{L} frames decode in a sequential pass, but the file reports "
                                    f"{meta.num_frames}", "re-encode the video (ffmpeg -i in -c:v libx264 out.mp4)")])
    pts = torch.cat(points)  # (C, K, D)
    if not torch.isfinite(pts).all():
        raise FloatingPointError(f"{video_path}: the backbone gave non-finite features; try mixed_precision='no'")
    _write(store, stem, backbone, pts, L, dtype)
    info = write_info(stem, video_path, meta, (backbone.feature_dim, L), dtype, clips=int(pts.shape[0]),
                      seconds=round(time.perf_counter() - t0, 3), fingerprint=backbone.fingerprint,
                      precision=precision(backbone, device))
    store.commit(stem, info)
    return info


def _embed(backbone: Backbone, clips: list[np.ndarray], device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.stack(clips)).to(device, non_blocking=True)  # (B, F, H, W, 3) uint8
    x = x.permute(0, 1, 4, 2, 3)  # (B, F, 3, H, W)
    return backbone.embed_clips(x).float().cpu()  # (B, K, D)


def _clips(video_path, backbone: Backbone, bar) -> Iterator[tuple[np.ndarray, int]]:
    """The video's clips in order, as ``(F, H, W, 3)`` uint8, with the frames decoded so far.

    Frame ``f`` belongs to clip ``f // span`` at offset ``f % span``; the clip keeps offsets that are
    multiples of ``frame_step``. The last clip, cut short by the video's end, repeats the video's
    last frame (``Backbone.clip_frames``).
    """
    F, step, span = backbone.num_frames, backbone.frame_step, backbone.span
    L = probe_video(video_path).num_frames
    kept: list[np.ndarray] = []
    last, n = None, 0
    # only the frames clips use are converted and resized: every step-th, and the last (it pads the last clip)
    for frame in _prefetch(iter_frames(video_path, backbone.resize, keep=lambda i: i % step == 0 or i == L - 1)):
        off = n % span
        last = frame if frame is not None else last
        if off % step == 0:
            kept.append(frame)
        n += 1
        if bar is not None:
            bar.update(1)
        if off == span - 1:
            yield np.stack(kept), n  # (F, H, W, 3)
            kept = []
    if last is None:
        raise DataError.of([problem(video_path, "no frame decodes", "re-encode the video, or remove it")])
    if kept or n % span:
        kept += [last] * (F - len(kept))  # offsets past the end read the last frame
        yield np.stack(kept), n


def _write(store: FeatureStore, stem: str, backbone: Backbone, points: torch.Tensor, L: int, dtype: str) -> None:
    """Spreads the clips' vectors to ``(D, L)`` chunk by chunk into the store's partial file."""
    partial = store.partial(stem)
    partial.unlink(missing_ok=True)  # left by a killed run: ours, redone
    D, dt = backbone.feature_dim, np.dtype(dtype)
    # Plain writes, not a memory map: a written map's pages count in this process's resident memory
    # (D x L values: 166 MB for an hour at 30 fps, D = 768, float16); the page cache holds them instead.
    with open(partial, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False,
                                                 "shape": (D, L)})
        head = f.tell()
        f.truncate(head + D * L * dt.itemsize)
        for a in range(0, L, CHUNK):
            b = min(L, a + CHUNK)
            rows = backbone.spread(points, L, a, b)  # (b - a, D) float32
            if dtype == "float16" and rows.abs().max() > 65504:
                raise OverflowError(f"{stem}: features exceed float16's range; extract with feature_dtype='float32'")
            cols = rows.T.numpy().astype(dt)  # (D, b - a)
            for d in range(D):  # row d of the (D, L) array, columns a .. b - 1
                f.seek(head + (d * L + a) * dt.itemsize)
                f.write(cols[d].tobytes())


def _prefetch(frames: Iterator[np.ndarray], depth: int = 64) -> Iterator[np.ndarray]:
    """Decodes in a thread (OpenCV and PyAV release the GIL) while the caller runs the backbone."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for f in frames:
                while not stop.is_set():
                    try:
                        q.put(f, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=work, daemon=True, name="kit-decode")
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def _manifest_backbone(backbone: Backbone) -> dict:
    s = backbone.summary()
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items() if k not in ("frozen", "parameters")}


def ensure_features(cfg: RunConfig, records: list[VideoRecord], output_dir: str | Path | None = None,
                    device: str | torch.device | None = None, batch_size: int | None = None, progress: bool | Callable = True,
                    backbone: Backbone | None = None) -> tuple[FeatureStore, Backbone, list[Extracted]]:
    """The store holding current features of ``records`` for ``cfg``'s backbone, extracting what is missing.

    The backbone is loaded to know its fingerprint (unless given). Under several processes, each
    extracts its share, then waits for the others (the caller's barrier).
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    backbone = backbone or backbone_for(cfg, freeze=True)
    videos_dir = records[0].video_path.parent
    store = store_for(backbone, videos_dir, resolve_path(output_dir or cfg.output_dir))
    rank, world, _ = shard()
    done = extract(records, backbone, store, batch_size=batch_size, dtype=cfg.feature_dtype, device=device,
                   progress=progress, rank=rank, world=world)
    new = [d for d in done if not d.skipped]
    if new:
        frames, secs = sum(d.frames for d in new), sum(d.seconds for d in new)
        log.info(f"[info] Extracted features of {len(new)} video(s), {frames} frames in {secs:.1f} s "
                 f"({frames / max(secs, 1e-9):.0f} frames/s) into {store.root}")
    return store, backbone, done


def extract_dataset(cfg: RunConfig, batch_size: int | None = None, device: str | torch.device | None = None,
                    progress: bool | Callable = True) -> tuple[FeatureStore, list[Extracted]]:
    """Features of every video of ``cfg``'s data (all splits) with ``cfg``'s backbone: ``python -m kit extract``.

    Videos with current features are skipped; under several processes each does its share.
    """
    from kit.data.dataset import run_data

    records = run_data(cfg).records
    if all(r.video_path is None for r in records):
        raise ValueError(f"{cfg.data_root} holds features, not videos (the MS-TCN layout): there is nothing to "
                         "extract; train on it directly")
    store, _, done = ensure_features(cfg, records, device=device, batch_size=batch_size, progress=progress)
    return store, done
