"""Backbones: clips/s, memory and FLOP/s of tiny and VideoMAE-base, on the CPU and (when there is one) the GPU."""
from __future__ import annotations

import time

import torch

from kit.bench.common import PeakMemory

N_USED = 16

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


def clip_batch_note(rows: list[dict], device: str) -> str:
    """What the rows of one model say about the default clips per forward pass on ``device``."""
    from kit.features.extract import CLIP_BATCH

    best = max(r["clips_s"] for r in rows)
    enough = min(r["batch"] for r in rows if r["clips_s"] >= 0.9 * best)
    by = {r["batch"]: r for r in rows}
    one, top = by[min(by)], by[max(by)]
    return (f"Clip batch on {device}: the smallest batch within 90 % of the best clips/s is {enough}; batch "
            f"{top['batch']} vs {one['batch']}: {top['clips_s'] / one['clips_s']:.2f}x the clips/s for "
            f"{top['peak_mem_mb']:.0f} vs {one['peak_mem_mb']:.0f} MiB of activations. The kit's default "
            f"(kit.features.extract.CLIP_BATCH) is {CLIP_BATCH[device]} on {device}.")


def videomae_base():
    """VideoMAE-base from ``VideoMAEConfig()`` defaults with RANDOM weights (seed 0; no download)."""
    from transformers import VideoMAEConfig, VideoMAEModel

    config = VideoMAEConfig(attn_implementation="sdpa")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return VideoMAEModel(config).eval(), config


def bench_backbone(ctx) -> dict:
    from transformers import VideoMAEConfig

    from kit.features.backbones import Backbone, load_backbone
    from kit.features.backbones.checkpoints import IMAGENET_MEAN, IMAGENET_STD, make_resize
    from kit.features.backbones.videomae import VideoMAEEncoder

    peak = matmul_peak("cpu", torch.float32, ctx.matmul_n_cpu, reps=5)
    frames = lambda b: torch.randint(0, 256, (b, N_USED, 3, 224, 224), dtype=torch.uint8)  # noqa: E731
    tiny = load_backbone("tiny", img_size=224, mode="tokens")
    rows = [dict(model="tiny (random)", device="cpu", dtype="float32",
                 **clip_throughput(tiny.embed, frames, b, "cpu", ctx.tiny_reps, 1,
                                   videomae_flops(tiny.encoder.model.config)["flops"], peak)) for b in ctx.tiny_batches]
    notes = [f"CPU rows: Backbone.embed of uint8 16 x 224 x 224 clips (normalise, network, pooling), "
             f"{torch.get_num_threads()} torch thread(s), float32; peak: a {ctx.matmul_n_cpu}^3 float32 matmul, "
             f"best of 5 before and 5 after the models, {{peak}} GFLOP/s. peak_mem_mb: the forward's activations "
             "(weights excluded)."]
    count = videomae_flops(VideoMAEConfig())
    if ctx.base_reps:
        model, config = videomae_base()
        bb = Backbone(VideoMAEEncoder(model, None), name="videomae", source="VideoMAEConfig()", identity="random",
                      mean=IMAGENET_MEAN, std=IMAGENET_STD, resize=make_resize(224, "crop"), num_frames=16,
                      mode="tokens", freeze=True, random_init=True)
        for b in ctx.base_batches:
            r = clip_throughput(bb.embed, frames, b, "cpu", ctx.base_reps, 1, count["flops"], peak)
            rows.append(dict(model=f"videomae-base (random, {config._attn_implementation})", device="cpu",
                             dtype="float32", **r))
        notes.append(f"VideoMAE-base on CPU: batches {ctx.base_batches}, {ctx.base_reps} timed batch(es) after one "
                     f"warm-up; {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters.")
        notes.append(clip_batch_note([r for r in rows if r["model"].startswith("videomae")], "cpu"))
        del model, bb
    else:
        notes.append("VideoMAE-base on CPU: skipped in --quick mode (tiny only).")
    # a shared machine's other jobs can slow the first measurement: the peak is the best seen around the models
    peak = max(peak, matmul_peak("cpu", torch.float32, ctx.matmul_n_cpu, reps=5))
    for row in rows:
        row.update(peak_tflops=peak, fraction_of_peak=row["tflops"] / peak)
    notes[0] = notes[0].replace("{peak}", f"{peak * 1e3:.1f}")
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
    return dict(title="Backbone throughput", rows=rows, notes=notes,
                summary=dict(cpu_matmul_tflops=peak, videomae_base_gmacs=count["macs"] / 1e9,
                             videomae_base_gflops=count["flops"] / 1e9, gpu=gpu))


def bench_gpu(ctx, flops: float, device: str = "cuda") -> dict:
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
    if rows:
        notes.append(clip_batch_note(rows, "cuda"))
    return dict(rows=rows, notes=notes, device=name, matmul_bf16_tflops=peak)


