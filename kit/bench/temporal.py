"""Bench section ``temporal_models``: what each temporal model costs, as ratios to MS-TCN in one run.

For each model of :data:`kit.temporal.models.TEMPORAL_MODELS` (at its recipe's sizes: MS-TCN 4 x 10
layers, MS-TCN++ 11 + 3 x 10, ASFormer 10 layers and 3 decoders; 64 channels; I3D-like D = 2048, 19
classes) and each whole-video length: one training step (forward, the model's ``training_loss``,
backward, Adam step) and one inference (eval mode, no gradients), each timed after a warm-up and
its peak memory measured (:class:`kit.bench.common.PeakMemory`: CUDA's allocator peak, or the CPU
RSS high-water mark). Every model is measured in the same process, length after length, so the
ratios to MS-TCN compare like with like.

Long videos: every model here runs a 20,000-frame video whole. The convolutional models hold
``O(T C)`` per layer; ASFormer's attention is upstream's sliding window, computed per block of
``bl`` frames against ``bl + 2 (bl // 2)`` keys (about ``2 T bl`` scores per layer, ``bl`` <= 512),
never a ``T x T`` matrix, so its memory grows linearly with ``T`` too.
"""
from __future__ import annotations

import time

import torch

from kit.bench.common import PeakMemory
from kit.temporal.models import TEMPORAL_MODELS, build_temporal

# each model's sizes as its recipe (kit.temporal.recipes) sets them
SIZES = {"mstcn": dict(channels=64, layers=10, stages=4, dropout=0.5),
         "mstcn++": dict(channels=64, layers=10, stages=4, dropout=0.5, layers_pg=11),
         "asformer": dict(channels=64, layers=10, stages=4, dropout=0.5),
         "diffact": dict(channels=64, layers=10, dropout=0.5)}  # the rest: DiffAct's defaults, its recipe's


def _timed(fn, reps: int, device: torch.device) -> tuple[float, float]:
    """Seconds per call (after one warm-up call) and the peak MiB a call adds."""
    fn()
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / reps
    return seconds, mem.mb


def measure(name: str, T: int, dim: int, classes: int, sizes: dict, reps: int, device: torch.device) -> dict:
    """One model at one length: a training step and an inference, seconds and peak MiB each."""
    torch.manual_seed(0)
    model = build_temporal(name, dim, {"action": classes}, **sizes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(1, T, dim, device=device)
    mask = torch.ones(1, T, dtype=torch.bool, device=device)
    labels = {"action": torch.randint(0, classes, (1, T), device=device)}

    def step():
        model.train()
        loss, _ = model.training_loss(x, mask, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x, mask)

    step_s, step_mb = _timed(step, reps, device)
    infer_s, infer_mb = _timed(infer, reps, device)
    params = sum(p.numel() for p in model.parameters())
    del model, opt
    return {"model": name, "frames": T, "params": params, "step_s": step_s, "step_mb": step_mb,
            "infer_s": infer_s, "infer_mb": infer_mb}


def _ratio(a: float, b: float, floor: float) -> float | None:
    return a / b if b >= floor else None  # a memory below the floor is measurement noise, not a base


def bench_temporal_models(ctx) -> dict:
    """The section: a row per model and length, with ratios to MS-TCN at that length."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows, notes = [], []
    for T in ctx.temporal_T:
        base = None
        for name in TEMPORAL_MODELS:
            sizes = ctx.temporal_sizes.get(name) or SIZES.get(name, {})
            r = measure(name, T, ctx.temporal_dim, ctx.temporal_classes, sizes, ctx.temporal_reps, device)
            base = base or r  # MS-TCN comes first in the registry
            rows.append({**r, "step_x": r["step_s"] / base["step_s"], "step_mem_x": _ratio(r["step_mb"], base["step_mb"], 1.0),
                         "infer_x": r["infer_s"] / base["infer_s"],
                         "infer_mem_x": _ratio(r["infer_mb"], base["infer_mb"], 1.0)})
    notes.append(f"{device.type.upper()}, torch threads {torch.get_num_threads()}; D={ctx.temporal_dim}, "
                 f"{ctx.temporal_classes} classes, batch 1, float32; {ctx.temporal_reps} timed call(s) after a warm-up")
    notes.append("_x columns: ratio to mstcn at the same length (memory ratios only where mstcn's peak is >= 1 MiB)")
    notes.append("ASFormer: sliding-window attention per block (upstream's), ~2 T bl scores per layer, never T x T: "
                 "memory linear in T")
    notes.append("DiffAct: attention over the kernel_size frames its dilated conv sees, never T x T; inference runs "
                 "the encoder once and the decoder once per DDIM step (25 at the recipe's sizes)")
    return dict(title="Temporal models: training step and whole-video inference vs MS-TCN", rows=rows, notes=notes)
