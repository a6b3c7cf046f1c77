"""Benchmarks: ``python -m kit bench [--quick] [--out DIR] [--threads N] [--sections a,b]``.

Each comparison is measured side by side in one run and reported as a ratio, with the machine and
its load average. Sections (one module each):

- ``loader`` (:mod:`.loader`): the kit's 16 frames of a window vs the original script's decode-all.
- ``extract`` (:mod:`.twostage`): whole-video extraction vs a bare sequential decode of the same files.
- ``two_stage`` (:mod:`.twostage`): codec frames per video frame, backbone clips and warm epochs of a
  frozen run (fit + evaluate) on whole videos vs on windows.
- ``cache`` (:mod:`.training`): the windowed path's feature cache off vs on.
- ``backbone`` (:mod:`.models`): clips/s, memory and FLOP/s of tiny and VideoMAE-base (CPU; a bf16 batch
  sweep on CUDA when there is a GPU).
- ``videomae`` (:mod:`.twostage`): a real-size VideoMAE-base (random weights, saved and loaded through
  the kit): an uncached epoch vs a cached one, both paths.
- ``serving`` (:mod:`.twostage`): ``evaluate`` in a fresh process on extracted features (and against the
  imports it paid before); the peak memory of ``extract`` and ``predict`` at 2, 20 and 60 minutes of video.
- ``scaling`` (:mod:`.training`): windowed epoch time and memory vs videos and vs ``T``.
- ``temporal_models`` (:mod:`.temporal`): per temporal model a training step and whole-video inference
  on 1,000 / 5,000 / 20,000 frames, time and peak memory as ratios to MS-TCN.

Prints a table per section and writes ``<out>/<timestamp>.json`` and ``.md``. ``--quick`` is a much
smaller run of every section, for CI; nothing asserts on its timings.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kit.bench.common import PeakMemory, describe_machine, format_table, _load  # noqa: F401  (re-exported)
from kit.bench.loader import bench_loader, seed_read_window  # noqa: F401
from kit.bench.models import (bench_backbone, bench_gpu, clip_throughput, matmul_peak, videomae_base,  # noqa: F401
                              videomae_flops)
from kit.bench.temporal import bench_temporal_models
from kit.bench.training import bench_cache, bench_scaling
from kit.bench.twostage import bench_extract, bench_serving, bench_two_stage, bench_videomae
from kit.config import cli_path, resolve_path
from kit.data.demo import make_demo_data


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
    base_batches: tuple = (1, 4)  # VideoMAE-base clips per forward pass on CPU: the clip batch default's measurement
    gpu_batches: tuple = (1, 2, 4, 8, 16, 32)
    gpu_reps: int = 10
    scale_videos: tuple = (3, 6, 12)
    scale_T: tuple = (60, 120, 180, 240)
    scale_T_videos: int = 6
    extract_reps: int = 2
    base_videos: int = 2  # VideoMAE-base epochs on this many demo videos; 0 = skip
    long_minutes: tuple = (2, 20, 60)  # extract and predict synthetic videos of these lengths (25 fps)
    long_size: tuple = (64, 48)
    eval_reps: int = 3  # evaluate now vs with the imports it paid before, interleaved pairs
    real_max_pixels: int = 0  # extraction section: real videos up to this many pixels a frame (0 = all)
    quick: bool = False
    runs: dict = field(default_factory=dict)  # the two-stage section's runs, for the serving section
    temporal_T: tuple = (1000, 5000, 20000)  # temporal_models: whole-video lengths
    temporal_dim: int = 2048  # temporal_models: feature width (I3D)
    temporal_classes: int = 19  # temporal_models: classes (50Salads)
    temporal_sizes: dict = field(default_factory=dict)  # temporal_models: {model: sizes}; empty = the recipes'
    temporal_reps: int = 2

    @classmethod
    def make(cls, quick: bool, work: Path) -> "Context":
        ctx = cls(work) if not quick else cls(
            work, num_videos=3, img_size=112, loader_T=(120,), loader_windows=2, loader_reps=1, cache_epochs=2,
            fit_kw=dict(img_size=64, train_T=60, val_T=60), matmul_n_cpu=512, matmul_n_gpu=4096,
            tiny_batches=(1,), tiny_reps=1, base_reps=0, gpu_batches=(1, 2), gpu_reps=2, scale_videos=(1, 2),
            scale_T=(30, 60), scale_T_videos=2, extract_reps=1, base_videos=0, long_minutes=(0.2,),
            long_size=(64, 48), eval_reps=0, real_max_pixels=640 * 480, temporal_T=(200, 600), temporal_dim=32,
            temporal_reps=1,
            temporal_sizes={**{m: dict(channels=8, layers=4, stages=2) for m in ("mstcn", "mstcn++", "asformer")},
                            "diffact": dict(channels=8, layers=4, decoder_channels=8, time_dim=16,
                                            sampling_timesteps=2)})
        ctx.quick = quick
        ctx.demo = make_demo_data(work / "demo_data", num_videos=ctx.num_videos)
        return ctx


SECTIONS = {"loader": bench_loader, "extract": bench_extract, "two_stage": bench_two_stage, "cache": bench_cache,
            "backbone": bench_backbone, "videomae": bench_videomae, "serving": bench_serving, "scaling": bench_scaling,
            "temporal_models": bench_temporal_models}


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
    ap.add_argument("--out", default="outputs/bench", type=cli_path, help="folder for <timestamp>.json and .md (default %(default)s)")
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
