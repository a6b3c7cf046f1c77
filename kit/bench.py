"""Benchmarks: ``python -m kit bench [--quick] [--out DIR] [--threads N] [--sections a,b]``.

Each comparison is measured side by side in one run and reported as a ratio:

1. ``loader``: windows/s and frames per window, the kit's ``read_frames`` of the 16 uniform
   positions vs the seed's way (:func:`seed_read_window`, a baseline kept here: decode and
   convert all ``T`` frames, then pick 16), on the demo data and ``../shared/videos`` if present.
2. ``cache``: training epochs with the frozen tiny backbone, feature cache off vs on (``fit``).
3. ``backbone``: clips/s, peak memory and achieved FLOP/s of tiny and VideoMAE-base (random
   init, no download) against a matrix-product peak measured in the same run; on CUDA a bf16
   SDPA batch sweep, else a line saying why it was skipped.
4. ``scaling``: epoch time and peak memory vs number of videos and vs ``T`` (cache off).

Prints a table per section and writes ``<out>/<timestamp>.json`` and ``.md`` (the same tables
in Markdown) with the machine described. ``--quick`` is a much smaller run of every section, for
CI; nothing asserts on its timings.

Memory on CPU: peak resident set size (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``
after ``malloc_trim``) minus the RSS at the start, which counts torch's allocations
(``tracemalloc`` would not see them). On CUDA: ``torch.cuda.max_memory_allocated``.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import re
import resource
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from kit.config import RunConfig, project_root, resolve_path
from kit.data import DECODE_STATS, VIDEO_EXTS, probe_video, read_frames, reset_decode_stats
from kit.data.demo import make_demo_data
from kit.data.windows import uniform_indices

N_USED = 16  # frames per window the 3D path feeds the backbone


# --- machine and memory -------------------------------------------------------------------------
def describe_machine() -> dict:
    """CPU model and cores, memory, GPU, library versions, date and load average, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem = _kb("MemTotal", "/proc/meminfo")
    return dict(cpu=cpu, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                memory_gb=round(mem / 2**20, 1) if mem else None,
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                torch=torch.__version__, cuda=torch.version.cuda, opencv=cv2.__version__,
                python=platform.python_version(), platform=platform.platform(),
                date=time.strftime("%Y-%m-%d %H:%M:%S %z"), load_avg_start=_load())


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _kb(field_name: str, path: str = "/proc/self/status") -> int | None:
    try:
        m = re.search(rf"^{field_name}:\s+(\d+) kB", Path(path).read_text(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` -> ``m.mb``: MiB the block added at its peak.

    CUDA: the allocator's peak. CPU on Linux: the RSS high-water mark, reset before the block;
    elsewhere ``ru_maxrss``, a lifetime peak (``method`` says which was used).
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.cuda = torch.device(device).type == "cuda"

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start, self.method = torch.cuda.memory_allocated(), "torch.cuda.max_memory_allocated"
            return self
        try:  # hand freed heap back to the OS first, or the block would reuse it unseen
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
            self.method = "VmHWM (reset) - RSS at start"
        except OSError:
            self.method = "ru_maxrss (lifetime peak) - RSS at start"
        self.start = (_kb("VmRSS") or 0) * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            hwm = _kb("VmHWM") if self.method.startswith("VmHWM") else None
            peak = hwm * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.mb = max(0, peak - self.start) / 2**20


# --- 1. loader ----------------------------------------------------------------------------------
def seed_read_window(path: str | Path, start: int, T: int, size: int, n: int = N_USED) -> torch.Tensor:
    """BASELINE, the seed's way (the kit does not use it): all ``T`` frames decoded, then ``n`` picked.

    Seeks to ``start`` like the kit (both pay the same seek), ``read()`` (decode + convert) every
    frame of the window, resizes each with the kit's rule, stacks ``(T, 3, size, size)`` and
    indexes ``uniform_indices(T, n)``. Frames past the end repeat the last one.
    """
    cap = cv2.VideoCapture(str(path))
    if start:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    for _ in range(T):
        ok, bgr = cap.read()
        if not ok:
            break
        if bgr.shape[:2] != (size, size):
            shrink = bgr.shape[0] > size or bgr.shape[1] > size
            bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    frames += frames[-1:] * (T - len(frames))
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    return video[uniform_indices(T, n)]  # (n, 3, H, W)


def bench_loader(ctx: "Context") -> dict:
    sets = [("demo", sorted((ctx.demo / "Videos").glob("*.mp4")))]
    real = project_root().parent / "shared" / "videos"
    notes = [f"kit: read_frames of the 16 uniform positions (one seek to the window start, grab() forward, "
             f"retrieve + resize + RGB of the 16 only). seed: seed_read_window in kit/bench.py (same seek, "
             f"read() + resize + RGB of all T frames, then pick 16). {ctx.img_size} px; {ctx.loader_reps} "
             "pass(es) over the windows, the two methods interleaved; probing and the seek check are warmed "
             "up first, untimed.",
             "kit_conv: frames retrieved and converted per window (target <= 1.25 x 16). kit_codec: frames the "
             "codec decoded (grab): a codec cannot skip frames between keyframes, so the kit still decodes "
             "all T and saves conversion and resizing only. seed_frames: decoded and converted. Neither "
             "count sees the frames FFmpeg decodes inside a seek (keyframe -> start), the same for both. "
             "match: fraction of windows whose 16 frames are pixel-identical between the two."]
    if real.is_dir():
        sets.append(("real", sorted(p for p in real.iterdir() if p.suffix.lower() in VIDEO_EXTS)))
    else:
        notes.append(f"real videos: {real} not found: skipped")
    rows = []
    for name, paths in sets:
        lengths = {p: probe_video(p).num_frames for p in paths}
        for T in ctx.loader_T:
            short = [f"{p.name} ({lengths[p]} frames)" for p in paths if lengths[p] < T]
            if short:
                notes.append(f"{name}, T={T}: too short for a whole window, not used: {', '.join(short)}")
            windows = _pick_windows([p for p in paths if lengths[p] >= T], lengths, T, ctx.loader_windows)
            if windows:
                rows.append(dict(data=name, T=T, videos=len({p for p, _ in windows}), windows=len(windows),
                                 **_compare_loaders(windows, T, ctx.img_size, ctx.loader_reps)))
    if not rows:
        raise RuntimeError(f"no video is long enough for T in {ctx.loader_T}")
    return dict(title="1. Loader: the kit's 16 frames vs the seed's all-T decode", rows=rows, notes=notes,
                summary=dict(speedup_min=min(r["speedup"] for r in rows), speedup_max=max(r["speedup"] for r in rows),
                             kit_conv_x_max=max(r["kit_conv_x"] for r in rows), target_conv_x=1.25))


def _pick_windows(paths: list[Path], lengths: dict, T: int, k: int) -> list[tuple[Path, int]]:
    """Up to ``k`` whole windows (stride T/2), round-robin over the videos."""
    starts = {p: list(range(0, lengths[p] - T + 1, max(1, T // 2))) for p in paths}
    out = [(p, s[i]) for i in range(max(map(len, starts.values()), default=0)) for p, s in starts.items() if i < len(s)]
    return out[:k]


def _compare_loaders(windows: list[tuple[Path, int]], T: int, size: int, reps: int) -> dict:
    idx = uniform_indices(T, N_USED)
    for p in {p for p, _ in windows}:  # warm-up: probe_video, seek_is_exact, the OS file cache
        read_frames(p, idx[:2], size)
        seed_read_window(p, 0, 2, size, n=2)
    secs = {"kit": 0.0, "seed": 0.0}
    conv = grab = match = 0
    for r in range(reps):
        for i, (p, s) in enumerate(windows):
            out = {}
            for method in ("kit", "seed") if (i + r) % 2 == 0 else ("seed", "kit"):
                reset_decode_stats()
                t0 = time.perf_counter()
                out[method] = read_frames(p, s + idx, size) if method == "kit" else seed_read_window(p, s, T, size)
                secs[method] += time.perf_counter() - t0
                if method == "kit" and r == 0:
                    conv, grab = conv + DECODE_STATS["frames_decoded"], grab + DECODE_STATS["frames_grabbed"]
            match += r == 0 and torch.equal(out["kit"], out["seed"])
    n = len(windows)
    kit, seed = n * reps / secs["kit"], n * reps / secs["seed"]
    return dict(kit_win_s=kit, seed_win_s=seed, speedup=kit / seed, used=N_USED, kit_conv=conv / n,
                kit_conv_x=conv / n / N_USED, kit_codec=grab / n, seed_frames=T, seed_x=T / N_USED, match=match / n)


# --- 2. feature cache ---------------------------------------------------------------------------
def _fit(cfg: RunConfig):
    """``fit(cfg).history`` and the CPU (``mem.mb``) and CUDA (``mem.gpu_mb``, else None) peaks it added."""
    from kit.temporal.train import fit  # late: accelerate is slow to import and only sections 2 and 4 need it

    with contextlib.ExitStack() as stack:
        mem = stack.enter_context(PeakMemory())
        gpu = stack.enter_context(PeakMemory("cuda")) if torch.cuda.is_available() else None
        history = fit(cfg).history
    mem.gpu_mb = gpu.mb if gpu is not None else None
    return history, mem


def bench_cache(ctx: "Context") -> dict:
    h = {on: _fit(RunConfig(data_root=str(ctx.demo), backbone="tiny", epochs=ctx.cache_epochs, feature_cache=on,
                            output_dir=str(ctx.work / f"cache_{on}"), run_name="bench", seed=0, **ctx.fit_kw))[0]
         for on in (False, True)}  # separate output_dirs: one run's disk cache cannot warm the other
    off, on = h[False], h[True]
    rows = [dict(epoch=e, off_train_s=float(off.train_s[e]), on_train_s=float(on.train_s[e]),
                 speedup=float(off.train_s[e] / on.train_s[e]), windows=int(on.windows[e]),
                 off_frames_decoded=int(off.frames_decoded[e]), on_frames_decoded=int(on.frames_decoded[e]),
                 on_cache_hits=int(on.cache_hits[e]), on_cache_misses=int(on.cache_misses[e])) for e in range(len(on))]
    warm_off, warm_on = float(off.train_s[1:].mean()), float(on.train_s[1:].mean())
    n, c = int(on.windows.iloc[-1]), ctx.fit_kw
    notes = [f"fit() twice on the same demo data ({ctx.num_videos} videos, its splits.csv), seed 0, frozen tiny "
             f"backbone, img_size {c['img_size']}, train_T {c['train_T']}, batch_size 2, {ctx.cache_epochs} "
             "epochs, separate output_dir per run. train_s: history.csv, the training loop only (validation "
             "excluded); frames_decoded counts training windows, the cache counters validation too. "
             f"visual_mode {c.get('visual_mode', RunConfig.visual_mode)}. Epoch 0 of the cached run "
             "decodes, embeds and writes the cache.",
             f"warm epochs (1+): uncached {warm_off:.3f} s, cached {warm_on:.3f} s: {warm_off / warm_on:.1f}x "
             f"(target >= 20x). Per window the cache saves {(warm_off - warm_on) / n * 1e3:.0f} ms (decode + "
             f"tiny backbone) and the head's training step, {warm_on / n * 1e3:.0f} ms, remains: with a "
             "backbone this cheap the ratio cannot exceed (saved + step) / step."]
    return dict(title="2. Training epoch, frozen tiny backbone: feature cache off vs on", rows=rows, notes=notes,
                summary=dict(warm_off_s=warm_off, warm_on_s=warm_on, speedup_warm=warm_off / warm_on, windows=n,
                             clips_per_window=float(off.frames_decoded.iloc[-1]) / n / N_USED,
                             target_speedup=20.0))


def project_cache(sections: dict) -> dict | None:
    """An ESTIMATE, not a measurement: section 2's uncached epoch with VideoMAE-base instead of tiny."""
    try:
        cache, rows = sections["cache"]["summary"], sections["backbone"]["rows"]
        tiny = next(r for r in rows if r["model"].startswith("tiny") and r["batch"] == 1)
        base = next(r for r in rows if r["model"].startswith("videomae-base") and r["device"] == "cpu")
    except (KeyError, StopIteration):
        return None
    n, on, clips = cache["windows"], cache["warm_on_s"], cache.get("clips_per_window", 1.0)
    off = cache["warm_off_s"] + n * clips * (base["s_per_clip"] - tiny["s_per_clip"])
    return dict(uncached_epoch_s=off, cached_epoch_s=on, speedup=off / on,
                text=f"Estimate (not measured): section 2's uncached epoch with VideoMAE-base on this CPU would "
                     f"take {cache['warm_off_s']:.2f} s + {n} windows x {clips:.3g} clips x ({base['s_per_clip']:.2f} - "
                     f"{tiny['s_per_clip']:.3f}) s/clip = {off:.0f} s against {on:.2f} s cached: "
                     f"about {off / on:.0f}x.")


# --- 3. backbone throughput ---------------------------------------------------------------------
def videomae_flops(config, num_frames: int | None = None, img_size: int | None = None) -> dict:
    """Forward FLOPs of one clip counted from a ``VideoMAEConfig`` (matmuls only; 1 MAC = 2 FLOPs).

    ``N = (F / tubelet) * (img / patch)^2`` tokens of width ``D``, MLP width ``I``, ``L`` layers:
    patch embedding ``N * 3 * tubelet * patch^2 * D``; per layer QKV ``3ND^2``, scores ``N^2 D``,
    attention x values ``N^2 D``, output projection ``ND^2``, MLP ``2NDI``. LayerNorm, softmax,
    GELU and biases (< 1 %) are left out. VideoMAE-base, 16 x 224 x 224: N = 1568, 180.3 GMACs.
    """
    N = ((num_frames or config.num_frames) // config.tubelet_size) * ((img_size or config.image_size)
                                                                       // config.patch_size) ** 2
    D, I, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    parts = dict(patch_embed=N * config.num_channels * config.tubelet_size * config.patch_size ** 2 * D,
                 qkv=L * 3 * N * D * D, scores=L * N * N * D, attn_v=L * N * N * D, proj=L * N * D * D,
                 mlp=L * 2 * N * D * I)
    macs = sum(parts.values())
    return dict(tokens=N, layers=L, macs=macs, flops=2 * macs, gmacs={k: v / 1e9 for k, v in parts.items()})


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device, dtype: torch.dtype, n: int, reps: int = 3) -> float:
    """Best TFLOP/s of an ``(n, n) @ (n, n)`` product (``2 n^3`` FLOPs) over ``reps`` runs."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e12


def clip_throughput(run, make_input, batch: int, device, reps: int, warmup: int, flops: float,
                    peak_tflops: float) -> dict:
    """clips/s of ``run(make_input(batch))``, its peak memory, and TFLOP/s against ``peak_tflops``."""
    x = make_input(batch)
    with PeakMemory(device) as mem:
        for _ in range(warmup):
            run(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            run(x)
        _sync(device)
        clips_s = batch * reps / (time.perf_counter() - t0)
    tflops = clips_s * flops / 1e12
    return dict(batch=batch, clips_s=clips_s, s_per_clip=1 / clips_s, peak_mem_mb=mem.mb, gflop_per_clip=flops / 1e9,
                tflops=tflops, peak_tflops=peak_tflops, fraction_of_peak=tflops / peak_tflops)


def videomae_base():
    """VideoMAE-base from ``VideoMAEConfig()`` defaults with RANDOM weights (seed 0; no download)."""
    from transformers import VideoMAEConfig, VideoMAEModel

    config = VideoMAEConfig(attn_implementation="sdpa")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return VideoMAEModel(config).eval(), config


def bench_backbone(ctx: "Context") -> dict:
    from transformers import VideoMAEConfig

    from kit.features.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, load_backbone

    peak = matmul_peak("cpu", torch.float32, ctx.matmul_n_cpu)
    frames = lambda b: torch.randint(0, 256, (b, N_USED, 3, 224, 224), dtype=torch.uint8)  # noqa: E731
    tiny = load_backbone("tiny", img_size=224, mode="tokens")
    rows = [dict(model="tiny (random)", device="cpu", dtype="float32",
                 **clip_throughput(tiny.embed, frames, b, "cpu", ctx.tiny_reps, 1,
                                   videomae_flops(tiny.model.config)["flops"], peak)) for b in ctx.tiny_batches]
    notes = [f"CPU rows: Backbone.embed of uint8 16 x 224 x 224 clips (normalise, network, pooling), "
             f"{torch.get_num_threads()} torch thread(s), float32; peak: a {ctx.matmul_n_cpu}^3 float32 matmul, "
             f"best of 3, {peak * 1e3:.1f} GFLOP/s. peak_mem_mb: the forward's activations (weights excluded)."]
    count = videomae_flops(VideoMAEConfig())
    if ctx.base_reps:
        model, config = videomae_base()
        bb = Backbone(model, name="videomae", is_3d=True, feature_dim=768, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                      img_size=224, num_frames=16, mode="tokens", freeze=True, source="VideoMAEConfig()",
                      revision="random", random_init=True, tubelet=2, patch=16)
        r = clip_throughput(bb.embed, frames, 1, "cpu", ctx.base_reps, 1, count["flops"], peak)
        rows.append(dict(model=f"videomae-base (random, {config._attn_implementation})", device="cpu",
                         dtype="float32", **r))
        notes.append(f"VideoMAE-base on CPU: batch 1, {ctx.base_reps} timed clip(s) after one warm-up clip; "
                     f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters.")
        del model, bb
    else:
        notes.append("VideoMAE-base on CPU: skipped in --quick mode (tiny only).")
    g, L = count["gmacs"], count["layers"]
    notes.append(f"FLOPs per 16 x 224 x 224 clip counted from VideoMAEConfig() (kit.bench.videomae_flops): "
                 f"N = {count['tokens']} tokens; patch embed {g['patch_embed']:.2f} + {L} layers x (QKV "
                 f"{g['qkv'] / L:.2f} + scores {g['scores'] / L:.2f} + AV {g['attn_v'] / L:.2f} + proj "
                 f"{g['proj'] / L:.2f} + MLP {g['mlp'] / L:.2f}) = {count['macs'] / 1e9:.1f} GMACs = "
                 f"{count['flops'] / 1e9:.1f} GFLOPs, {(count['macs'] / 180e9 - 1) * 100:+.1f} % from the quoted "
                 "180 GMACs.")
    if torch.cuda.is_available():
        gpu = bench_gpu(ctx, count["flops"])
        rows, notes = rows + gpu.pop("rows"), notes + gpu.pop("notes")
    else:
        gpu = dict(skipped=f"no CUDA GPU: torch.cuda.is_available() is False (torch {torch.__version__}, "
                           f"built for CUDA {torch.version.cuda})")
        notes.append(f"GPU part (VideoMAE-base in bf16 with SDPA, batch sweep): SKIPPED, {gpu['skipped']}.")
    return dict(title="3. Backbone throughput", rows=rows, notes=notes,
                summary=dict(cpu_matmul_tflops=peak, videomae_base_gmacs=count["macs"] / 1e9,
                             videomae_base_gflops=count["flops"] / 1e9, gpu=gpu))


def bench_gpu(ctx: "Context", flops: float, device: str = "cuda") -> dict:
    """VideoMAE-base with bf16 weights and inputs and SDPA, batch sweep, on the first CUDA device."""
    dev = torch.device(device)
    peak = matmul_peak(dev, torch.bfloat16, ctx.matmul_n_gpu, reps=5)
    model, config = videomae_base()
    model = model.to(dev, torch.bfloat16)
    make = lambda b: torch.randn(b, 16, 3, 224, 224, device=dev, dtype=torch.bfloat16)  # noqa: E731

    @torch.inference_mode()
    def run(x):
        return model(pixel_values=x).last_hidden_state  # (B, 1568, 768)

    name = torch.cuda.get_device_name(dev)
    notes = [f"GPU rows ({name}): the network only (no preprocessing), bf16 weights and inputs, "
             f"attn={config._attn_implementation}, 3 warm-up + {ctx.gpu_reps} timed batches; peak: a "
             f"{ctx.matmul_n_gpu}^3 bf16 matmul, best of 5, {peak:.0f} TFLOP/s. peak_mem_mb: "
             "max_memory_allocated above the weights and the input batch."]
    rows = []
    for b in ctx.gpu_batches:
        try:
            rows.append(dict(model=f"videomae-base (random, {config._attn_implementation})", device=dev.type,
                             dtype="bfloat16", **clip_throughput(run, make, b, dev, ctx.gpu_reps, 3, flops, peak)))
        except torch.cuda.OutOfMemoryError:
            notes.append(f"batch {b}: CUDA out of memory; sweep stopped there.")
            break
    model = None  # frees the weights for what runs next
    torch.cuda.empty_cache()
    return dict(rows=rows, notes=notes, device=name, matmul_bf16_tflops=peak)


# --- 4. scaling ---------------------------------------------------------------------------------
def bench_scaling(ctx: "Context") -> dict:
    c = ctx.fit_kw
    points = [("videos", n, c["train_T"]) for n in ctx.scale_videos] + [("T", ctx.scale_T_videos, T)
                                                                       for T in ctx.scale_T]
    rows, done = [], {}
    for axis, n, T in points:
        if (n, T) not in done:  # a point on both axes runs once
            data = ctx.work / f"subset_{n}"  # the first n demo videos, without splits.csv
            for sub in ("Videos", "Annotations", "Poses"):
                (data / sub).mkdir(parents=True, exist_ok=True)
                for f in sorted((ctx.demo / sub).glob("demo_*"))[:n]:
                    if not (data / sub / f.name).exists():
                        (data / sub / f.name).symlink_to(f.resolve())
            cfg = RunConfig(data_root=str(data), backbone="tiny", epochs=1, feature_cache=False, val_fraction=0.0,
                            output_dir=str(ctx.work / f"scale_{n}_{T}"), run_name="bench", seed=0,
                            **(c | dict(train_T=T)))
            h, mem = _fit(cfg)
            w, H = int(h.windows[0]), cfg.img_size
            done[n, T] = dict(windows=w, train_s=float(h.train_s[0]), s_per_window=float(h.train_s[0]) / w,
                              conv_per_window=int(h.frames_decoded[0]) / w,
                              codec_per_window=DECODE_STATS["frames_grabbed"] / w,  # of the last (only) epoch
                              peak_mem_mb=mem.mb, **({} if mem.gpu_mb is None else dict(gpu_peak_mb=mem.gpu_mb)),
                              # the frames the backbone reads per window (16 per clip; sliding: C clips)
                              kit_batch_video_mb=2 * int(h.frames_decoded[0]) / w * 3 * H * H / 2**20,
                              seed_batch_video_mb=2 * T * 3 * H * H / 2**20)
        rows.append(dict(axis=axis, videos=n, T=T, **done[n, T]))
    notes = [f"fit(), 1 epoch, frozen tiny backbone, feature cache OFF (the real per-epoch cost), img_size "
             f"{c['img_size']}, batch_size 2, stride T/2, every video trains (val_fraction 0, no splits.csv). "
             "peak_mem_mb: RSS high-water mark of the whole fit() minus the RSS before it.",
             "conv/codec_per_window: frames converted (those the backbone uses; fewer when a short video's padding repeats "
             "its last frame) and frames the codec decoded, per window.",
             "kit/seed_batch_video_mb: one batch's uint8 video tensor, computed (B x S x 3 x H x W): the kit "
             "holds the S frames its backbone reads (16 per clip: 16 in clip/tokens mode, round(T/32) x 16 in "
             "sliding mode), the seed's way all T before it picks 16."]
    return dict(title="4. Scaling: epoch time and memory vs videos and vs T (cache off)", rows=rows, notes=notes,
                summary=dict(points=len(rows), fits=len(done)))


# --- driver -------------------------------------------------------------------------------------
@dataclass
class Context:
    """Sizes of one run: the full defaults, or :meth:`make` with ``quick=True``."""

    work: Path
    demo: Path = None
    num_videos: int = 12
    img_size: int = 224
    loader_T: tuple = (120, 180, 240)
    loader_windows: int = 12
    loader_reps: int = 3
    cache_epochs: int = 4
    fit_kw: dict = field(default_factory=lambda: dict(img_size=224, train_T=180, val_T=240))
    matmul_n_cpu: int = 2048
    matmul_n_gpu: int = 8192
    tiny_batches: tuple = (1, 2, 4)
    tiny_reps: int = 5
    base_reps: int = 2  # 0 = skip VideoMAE-base on CPU
    gpu_batches: tuple = (1, 2, 4, 8, 16, 32)
    gpu_reps: int = 10
    scale_videos: tuple = (3, 6, 12)
    scale_T: tuple = (60, 120, 180, 240)
    scale_T_videos: int = 6

    @classmethod
    def make(cls, quick: bool, work: Path) -> "Context":
        ctx = cls(work) if not quick else cls(
            work, num_videos=3, img_size=112, loader_T=(120,), loader_windows=2, loader_reps=1, cache_epochs=2,
            fit_kw=dict(img_size=64, train_T=60, val_T=60), matmul_n_cpu=512, matmul_n_gpu=4096,
            tiny_batches=(1,), tiny_reps=1, base_reps=0, gpu_batches=(1, 2), gpu_reps=2, scale_videos=(1, 2),
            scale_T=(30, 60), scale_T_videos=2)
        ctx.demo = make_demo_data(work / "demo_data", num_videos=ctx.num_videos)
        return ctx


SECTIONS = {"loader": bench_loader, "cache": bench_cache, "backbone": bench_backbone, "scaling": bench_scaling}


def format_table(rows: list[dict], markdown: bool = False) -> str:
    """Rows as an aligned text table, or a Markdown one; columns from the first row."""
    cols = list(rows[0]) if rows else []
    cells = [[_fmt(r.get(k)) for k in cols] for r in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                         + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(cols)]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in [cols] + cells)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) and abs(v) < 1000 else f"{v:.0f}" if isinstance(v, float) else str(v)


def render(result: dict, markdown: bool = False) -> str:
    m = result["machine"]
    load = lambda x: "/".join(f"{v:.1f}" for v in x or [])  # noqa: E731
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, GPU: {m['gpu'] or 'none'}; torch "
             f"{m['torch']} ({m['torch_threads']} CPU threads), OpenCV {m['opencv']}; {m['date']}; load average "
             f"(1/5/15 min) {load(m['load_avg_start'])} at start, {load(result.get('load_avg_end'))} at end"
             f"{'; --quick' if result['quick'] else ''}."]
    if result.get("warning"):
        lines.append(f"Warning: {result['warning']}.")
    lines += [render_section(name, sec, markdown) for name, sec in result["sections"].items()]
    if "projection" in result:
        lines += ["", result["projection"]["text"]]
    return "\n".join(lines)


def render_section(name: str, sec: dict, markdown: bool = False) -> str:
    lines = ["", f"{'### ' if markdown else '== '}{sec.get('title', name)} ({sec.get('elapsed_s', 0):.0f} s)", ""]
    if "error" in sec:
        return "\n".join(lines + [f"ERROR: {sec['error']}"])
    return "\n".join(lines + [format_table(sec["rows"], markdown), ""]
                     + [f"{'-' if markdown else '*'} {n}" for n in sec["notes"]])


def main_bench(argv: list[str] | None = None) -> int:
    """Runs the sections, prints their tables, writes the JSON and Markdown; 1 if a section failed."""
    ap = argparse.ArgumentParser(prog="python -m kit bench", description="Benchmarks of the data path, the "
                                 "feature cache and the backbones, each measured side by side and reported as a ratio.")
    ap.add_argument("--quick", action="store_true", help="a much smaller run of every section (CI)")
    ap.add_argument("--out", default="outputs/bench", help="folder for <timestamp>.json and .md (default %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default. On a loaded "
                    "machine 1 avoids threads stalling on each other")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset (default: all)")
    args = ap.parse_args(argv)
    names = [s for s in args.sections.split(",") if s]
    if set(names) - set(SECTIONS):
        ap.error(f"unknown section(s) {sorted(set(names) - set(SECTIONS))}; choose from {list(SECTIONS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    result = dict(machine=describe_machine(), quick=args.quick, sections={})
    print(render(result).split("; load")[0] + ".", flush=True)
    load, cores = result["machine"]["load_avg_start"], os.cpu_count() or 1
    if load and load[0] > 0.75 * cores:
        result["warning"] = (f"the machine is busy (load average {load[0]:.1f} on {cores} cores): timings are noisy"
                             + ("" if torch.get_num_threads() == 1 else "; with more than one torch thread, threads "
                                "stall waiting for each other: --threads 1 is steadier"))
        print(f"WARNING: {result['warning']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="kit-bench-"))
    try:
        ctx = Context.make(args.quick, work)
        for name in names:
            t0 = time.perf_counter()
            try:
                sec = SECTIONS[name](ctx)
            except Exception as e:  # noqa: BLE001 - one broken section must not hide the others
                traceback.print_exc()
                sec = dict(title=name, error=f"{type(e).__name__}: {e}")
            sec["elapsed_s"] = time.perf_counter() - t0
            result["sections"][name] = sec
            print(render_section(name, sec), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if projection := project_cache(result["sections"]):
        result["projection"] = projection
        print("\n" + projection["text"], flush=True)
    result.update(elapsed_s=time.perf_counter() - t_all, load_avg_end=_load())
    out = resolve_path(args.out) / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(render(result, markdown=True) + "\n")
    print(f"\n{render(result).split(chr(10))[0]}\nTotal {result['elapsed_s']:.0f} s. Wrote {out} and "
          f"{out.with_suffix('.md').name}", flush=True)
    return 1 if any("error" in s for s in result["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main_bench())
