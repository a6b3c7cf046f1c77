"""The two-stage path measured against the windowed one, side by side in one run.

- :func:`bench_two_stage`: codec frames decoded per video frame over a whole frozen run (fit: every
  epoch and validation) and then ``evaluate`` on val and test; backbone clips; warm epochs.
- :func:`bench_extract`: extraction throughput against a bare sequential decode of the same files.
- :func:`bench_videomae`: a real-size VideoMAE-base (random weights, saved and loaded through the kit):
  an uncached epoch against a cached one, on both paths.
- :func:`bench_serving`: ``evaluate`` in a fresh process on extracted features (does it build the
  backbone?), and the peak memory of ``predict`` on long videos (does it grow with the video?).
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from kit.bench.common import measured_fit
from kit.config import RunConfig, project_root
from kit.data import VIDEO_EXTS, load_records, reset_decode_stats
from kit.data.stream import iter_frames
from kit.data.video import DECODE_STATS, codec_frames, converted_frames


@contextlib.contextmanager
def counting_clips():
    """Counts the clips any backbone embeds inside the block (``counter["clips"]``)."""
    from kit.features.backbones.base import Backbone

    counter = {"clips": 0}
    real = Backbone.embed_clips

    def counted(self, frames):
        counter["clips"] += frames.shape[0]
        return real(self, frames)
    Backbone.embed_clips = counted
    try:
        yield counter
    finally:
        Backbone.embed_clips = real


def bench_two_stage(ctx) -> dict:
    from kit.results.evaluate import evaluate

    total = sum(r.num_frames for r in load_records(ctx.demo))
    rows, ctx.runs = [], {}
    for pipeline in ("whole_video", "windows"):
        cfg = RunConfig(data_root=str(ctx.demo), backbone="tiny", epochs=ctx.cache_epochs, pipeline=pipeline,
                        output_dir=str(ctx.work / f"two_{pipeline}"), run_name="bench", seed=0, **ctx.fit_kw)
        reset_decode_stats()
        with counting_clips() as clips:
            t0 = time.perf_counter()
            h, mem = measured_fit(cfg)
            t1 = time.perf_counter()
            fit_codec, fit_clips, probe = codec_frames(), clips["clips"], DECODE_STATS["probe_frames"]
            run = ctx.work / f"two_{pipeline}" / "bench"
            splits = json.loads((run / "splits.json").read_text())
            for split in [s for s in ("val", "test") if splits.get(s)]:
                evaluate(run, split=split)
            t2 = time.perf_counter()
        ctx.runs[pipeline] = run
        warm = h.train_s.iloc[1:] if len(h) > 1 else h.train_s
        rows.append(dict(path=pipeline, frames=total, codec_per_frame_fit=fit_codec / total,
                         codec_per_frame_with_eval=codec_frames() / total, probe_frames=probe,
                         converted_per_frame=converted_frames() / total, clips_fit=fit_clips,
                         clips_with_eval=clips["clips"], fit_s=t1 - t0, first_epoch_s=float(h.train_s.iloc[0]),
                         warm_epoch_s=float(warm.median()), val_s=float(h.val_s.median()), eval_s=t2 - t1,
                         peak_mem_mb=mem.mb))
    whole, win = rows
    span = RunConfig().num_frames * RunConfig().frame_step
    notes = [f"The same {total} frames of the demo data ({ctx.num_videos} videos), frozen tiny backbone, "
             f"{ctx.fit_kw}, {ctx.cache_epochs} epochs, then evaluate on val and test. codec_per_frame: frames the "
             "codec decoded (read_frames + iter_frames) per video frame; the limit is 1.0 (each frame once, ever). "
             "probe_frames: the header check and PyAV's 3-frame check, once per file (not in the ratios).",
             f"whole_video: features extracted once per video (clips of {span} frames tiling it), every epoch, "
             "validation and evaluation read them. windows: the windowed path with its feature cache (train_T "
             "windows on a fixed grid, val_T windows overlapping by half for validation and evaluation).",
             f"Warm epochs (2nd on): whole videos {whole['warm_epoch_s']:.3f} s vs windows {win['warm_epoch_s']:.3f} s: "
             f"{win['warm_epoch_s'] / max(whole['warm_epoch_s'], 1e-9):.1f}x. Backbone clips over fit + evaluate: "
             f"{whole['clips_with_eval']} vs {win['clips_with_eval']}."]
    return dict(title="Two stages vs windows: decoding, backbone clips, epochs", rows=rows, notes=notes,
                summary=dict(codec_whole=whole["codec_per_frame_with_eval"], codec_windows=win["codec_per_frame_with_eval"],
                             warm_speedup=win["warm_epoch_s"] / max(whole["warm_epoch_s"], 1e-9)))


def _real_videos() -> list[Path]:
    folder = project_root().parent / "shared" / "videos"
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS) if folder.is_dir() else []


def bench_extract(ctx) -> dict:
    from kit.data.inputs import video_records
    from kit.features.backbones import load_backbone
    from kit.features.extract import extract, store_for

    bb = load_backbone("tiny", img_size=ctx.img_size, frame_step=RunConfig().frame_step)
    sets = [("demo", load_records(ctx.demo))]
    paths = _real_videos()
    real = [r for r in (video_records(paths) if paths else [])
            if not ctx.real_max_pixels or r.width * r.height <= ctx.real_max_pixels]
    if real:
        sets.append(("real", real))
    rows = []
    for name, records in sets:
        for r in records:  # warm: probing, PyAV's check, the OS file cache
            next(iter_frames(r.video_path, bb.resize))
        decode_s = extract_s = 0.0
        for rep in range(ctx.extract_reps):
            t0 = time.perf_counter()
            for r in records:
                for _ in iter_frames(r.video_path, bb.resize):
                    pass
            t1 = time.perf_counter()
            extract(records, bb, store_for(bb, records[0].video_path.parent, ctx.work / f"x{name}{rep}"),
                    progress=False)
            decode_s, extract_s = decode_s + t1 - t0, extract_s + time.perf_counter() - t1
        n = sum(r.num_frames for r in records) * ctx.extract_reps
        size = sorted({f"{r.width}x{r.height}" for r in records})
        rows.append(dict(data=name, videos=len(records), frames=n // ctx.extract_reps, sizes=",".join(size),
                         decode_fps=n / decode_s, extract_fps=n / extract_s, ratio=decode_s / extract_s))
    notes = [f"decode: iter_frames of every video with the tiny backbone's geometry ({bb.resize.describe()}), "
             f"nothing else. extract: kit.features.extract.extract into a fresh store (decode in a thread, clips of "
             f"{bb.span} frames, batches of 8 through the tiny backbone at {ctx.img_size} px, spread and written as "
             f"float16 (D, L)). {ctx.extract_reps} repetition(s), the two interleaved. ratio = extraction frames/s "
             "over decode frames/s (goal: >= 0.8, decode-bound)."]
    return dict(title="Extraction vs a bare sequential decode", rows=rows, notes=notes,
                summary=dict(ratio_min=min(r["ratio"] for r in rows)))


def save_videomae_base(folder: Path) -> Path:
    """VideoMAE-base for Kinetics (its real config, RANDOM weights) and its processor, saved like a checkpoint."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VideoMAEForVideoClassification(VideoMAEConfig(use_mean_pooling=True, num_labels=400))
    model.save_pretrained(folder)
    VideoMAEImageProcessor().save_pretrained(folder)  # shortest edge 224, centre crop 224, ImageNet mean/std
    return folder


def bench_videomae(ctx) -> dict:
    if not ctx.base_videos:
        return dict(title="VideoMAE-base (random weights): uncached vs cached epochs", rows=[dict(
            path="-", videos=0, frames=0, skipped=1.0, uncached_s=0.0, cached_s=0.0)],
            notes=["skipped in --quick mode: VideoMAE-base runs at about 2-3 s per clip on 2 CPU cores"],
            summary={})
    folder = save_videomae_base(ctx.work / "videomae-base")
    data = _subset(ctx, ctx.base_videos)
    frames = sum(r.num_frames for r in load_records(data))
    rows = []
    for pipeline in ("whole_video", "windows"):
        cfg = RunConfig(data_root=str(data), backbone="videomae", backbone_path=str(folder), epochs=3,
                        pipeline=pipeline, val_fraction=0.0, test_fraction=0.0, train_T=64, val_T=64,
                        output_dir=str(ctx.work / f"base_{pipeline}"), run_name="bench", seed=0, img_size=224)
        with counting_clips() as clips:
            t0 = time.perf_counter()
            h, _ = measured_fit(cfg)
            fit_s = time.perf_counter() - t0
        warm = float(h.train_s.iloc[1:].median())
        if pipeline == "whole_video":  # extraction is what the first epoch of a windowed run pays for
            uncached = fit_s - float(h.train_s.sum() + h.val_s.sum()) + float(h.train_s.iloc[0])
        else:
            uncached = float(h.train_s.iloc[0])
        rows.append(dict(path=pipeline, videos=ctx.base_videos, frames=frames, clips=clips["clips"],
                         uncached_s=uncached, cached_s=warm, ratio=uncached / max(warm, 1e-9)))
    notes = [f"VideoMAE-base for Kinetics-400 (VideoMAEConfig(use_mean_pooling=True), 86 M parameters, RANDOM "
             f"weights), saved with save_pretrained and loaded with load_backbone('videomae', path=...). "
             f"{ctx.base_videos} demo videos ({frames} frames) at 224 px, all training, 3 epochs, CPU.",
             "whole_video: uncached = extracting the features + one epoch on them; cached = a later epoch. windows: "
             "the first epoch (decode + backbone for every window, cache filled) against later ones (cache hits)."]
    return dict(title="VideoMAE-base (random weights): uncached vs cached epochs", rows=rows, notes=notes,
                summary={r["path"]: r["ratio"] for r in rows})


def _subset(ctx, n: int) -> Path:
    """The first ``n`` demo videos, without splits.csv (linked, not copied)."""
    data = ctx.work / f"subset_{n}"
    for sub in ("Videos", "Annotations", "Poses"):
        (data / sub).mkdir(parents=True, exist_ok=True)
        for f in sorted((ctx.demo / sub).glob("demo_*"))[:n]:
            if not (data / sub / f.name).exists():
                (data / sub / f.name).symlink_to(f.resolve())
    return data


def long_video(path: Path, frames: int, size: tuple[int, int], fps: float = 25.0) -> Path:
    """A synthetic video of ``frames`` frames (moving shapes on a gradient), written with OpenCV."""
    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    yy, xx = np.mgrid[0:h, 0:w]
    for f in range(frames):
        img = np.stack([(xx + f) % 256, (yy + 2 * f) % 256, np.full_like(xx, (3 * f) % 256)], -1).astype(np.uint8)
        cv2.circle(img, (int(w / 2 + w / 3 * np.sin(f / 20)), h // 2), h // 6, (255, 255, 255), -1)
        out.write(img)
    out.release()
    return path


def bench_serving(ctx) -> dict:
    rows = []
    threads = torch_threads()
    t_import, _ = _python("import kit.results.evaluate")
    runs = ctx.runs or {"whole_video": _memory_run(ctx)}
    for pipeline, run in runs.items():
        secs, proc = _python(KIT, "evaluate", "--run", str(run), "--split", "val")
        rows.append(_serving_row(f"evaluate, {pipeline} run", 0, secs, proc, import_s=t_import))
    # evaluate now against evaluate plus the imports it paid before #27 (sklearn's metrics, matplotlib through
    # kit.results.barcode), interleaved in fresh processes: the same machine, the same load
    run, before, after = runs["whole_video"], [], []
    for _ in range(ctx.eval_reps):
        after.append(_python(KIT, "evaluate", "--run", str(run), "--split", "val"))
        before.append(_python(BEFORE + KIT, "evaluate", "--run", str(run), "--split", "val"))
    for name, got in (("evaluate now (median)", after), ("evaluate + sklearn, matplotlib: before #27 (median)", before)):
        if got:
            rows.append(_serving_row(name, 0, sorted(g[0] for g in got)[len(got) // 2], got[0][1]))
    b, a = (sorted(g[0] for g in x)[len(x) // 2] if x else float("nan") for x in (before, after))
    run = runs["whole_video"] if ctx.quick else _memory_run(ctx)  # quick: the two-stage run, no extra fit
    base = _rss(_python("import kit.results.predict")[1])
    w, h = ctx.long_size
    peaks: dict[str, list[float]] = {}
    for minutes in ctx.long_minutes:
        n = int(round(minutes * 60 * LONG_FPS))
        video = long_video(ctx.work / f"long_{n}.mp4", n, ctx.long_size, LONG_FPS)
        poses = ctx.work / f"poses_{n}"
        poses.mkdir(exist_ok=True)
        np.save(poses / f"{video.stem}.npy", _keypoints(n))
        secs, proc = _python(EXTRACT, str(run), str(video))  # into the run's store: predict below finds it current
        rows.append(_serving_row(f"extract, {minutes:g} min {w}x{h}", n, secs, proc, base=base, size=(w, h)))
        peaks.setdefault("extract", []).append(rows[-1]["peak_rss_mb"])
        for label, extra in (("no keypoints", []), ("keypoints", ["--poses", str(poses)])):
            secs, proc = _python(KIT, "predict", "--run", str(run), str(video), "--out",
                                 str(ctx.work / f"pred_{n}_{len(extra)}"), *extra)
            rows.append(_serving_row(f"predict, {minutes:g} min, {label}", n, secs, proc, base=base, size=(w, h)))
            peaks.setdefault(f"predict, {label}", []).append(rows[-1]["peak_rss_mb"])
    spread = {k: max(v) - min(v) for k, v in peaks.items()}
    notes = [f"Fresh processes, {threads}; the load average is in the header (a shared machine: timings are noisy, "
             "memory is not).",
             f"evaluate: `python -m kit evaluate --split val` on each run of the two-stage section (else on the small "
             f"run below); import_s: a process that only imports kit.results.evaluate ({t_import:.1f} s). "
             "backbone_built: the tiny backbone was loaded; heavy_imports: sklearn and matplotlib modules loaded "
             f"by the end (0 now). Before/after: {ctx.eval_reps} interleaved pair(s) (none in --quick), medians: {b:.2f} s "
             f"with the imports evaluate paid before #27, {a:.2f} s now ({b / max(a, 1e-9):.2f}x).",
             f"extract / predict: synthetic mp4v videos of {', '.join(f'{m:g}' for m in ctx.long_minutes)} min at "
             f"{LONG_FPS:g} fps, {w}x{h} (small frames: memory does not depend on the frame size past decoding), through "
             f"a small whole-video run (tiny backbone, {MEMORY_RUN['img_size']} px, use_pose; --quick: the two-stage "
             "run). extract: the run's "
             "features of the video in a fresh process; predict: `python -m kit predict` in a fresh process on the "
             "now current features, without and with --poses (synthetic keypoints). peak_rss_mb: the process's peak "
             f"resident memory (VmHWM); rise_mb: minus a process that only imports kit.results.predict ({base:.0f} MiB);"
             " whole_video_mb: the video decoded whole, uint8.",
             "Spread of the peaks across lengths (goal < 150 MiB): " + ", ".join(f"{k} {v:.0f} MiB"
                                                                                for k, v in spread.items()) + "."]
    return dict(title="Evaluate and predict: startup on extracted features, memory on long videos", rows=rows,
                notes=notes, summary=dict(peak_spread_mb=spread, evaluate_before_s=b, evaluate_after_s=a))


LONG_FPS = 25.0
MEMORY_RUN = dict(backbone="tiny", img_size=32, epochs=1, tcn_channels=64, use_pose=True, seed=0)
BEFORE = "import sklearn.metrics, kit.results.barcode\n"  # what kit.results.evaluate imported before #27
EXTRACT = ("import sys\nfrom kit.data.inputs import video_records\nfrom kit.temporal.trained import TrainedRun\n"
           "TrainedRun(sys.argv[1], 'last').features_of(video_records([sys.argv[2]]))\n")
HEAVY = ("sklearn", "matplotlib")


def torch_threads() -> str:
    """The thread setting of the fresh processes, as every figure states it."""
    import os

    import torch

    return (f"torch threads {torch.get_num_threads()} (OMP_NUM_THREADS in the children), OMP_WAIT_POLICY "
            f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}")


def _memory_run(ctx) -> Path:
    """A small whole-video run with a pose branch on the demo data (once per bench run)."""
    run = ctx.work / "memory_run" / "bench"
    if not (run / "last.pt").is_file():
        from kit.temporal.train import fit

        fit(RunConfig(data_root=str(ctx.demo), output_dir=str(run.parent), run_name="bench", **MEMORY_RUN))
    return run


def _keypoints(n: int) -> np.ndarray:
    """(n, 17, 3) synthetic keypoints: a skeleton drifting across the frame, every joint seen."""
    t = np.arange(n, dtype=np.float32)[:, None]
    xy = np.stack([10 + np.arange(17) * 2 + 5 * np.sin(t / 30), 20 + np.arange(17) + 3 * np.cos(t / 40)], -1)
    return np.concatenate([xy, np.ones((n, 17, 1))], -1).astype(np.float32)


def _serving_row(what: str, frames: int, secs: float, proc, import_s: float = 0.0, base: float = 0.0,
                 size: tuple[int, int] = (0, 0)) -> dict:
    peak = _rss(proc)
    return dict(what=what, frames=frames, seconds=secs, import_s=import_s,
                backbone_built=float("Using the tiny backbone" in proc.stderr), peak_rss_mb=peak,
                rise_mb=peak - base if base else 0.0, heavy_imports=float(_heavy(proc)),
                whole_video_mb=frames * size[0] * size[1] * 3 / 2**20)


KIT = "import runpy, sys; sys.argv = ['kit'] + sys.argv[1:]; runpy.run_module('kit', run_name='__main__', alter_sys=True)"


def _python(code: str, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    """Runs ``code`` in a fresh interpreter; it prints its peak resident memory at exit.

    The peak is ``VmHWM`` of ``/proc/self/status``, this process's own address space: ``ru_maxrss`` would
    not do, since Linux carries it across ``exec`` from the forked copy of the (large) bench process.
    """
    wrapped = ("import atexit, re, sys\natexit.register(lambda: print('PEAK_RSS_KB', re.search(r'VmHWM:\\s+(\\d+)', "
               "open('/proc/self/status').read()).group(1), 'HEAVY', sum(m.split('.')[0] in "
               f"{HEAVY!r} for m in list(sys.modules)), flush=True))\n" + code)
    import torch

    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))  # the bench's --threads, stated in notes
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapped, *args], cwd=project_root(), capture_output=True, text=True,
                          timeout=1800, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{code[:60]} {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return time.perf_counter() - t0, proc


def _heavy(proc: subprocess.CompletedProcess) -> int:
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_RSS_KB"):
            return int(line.split()[3])
    return -1


def _rss(proc: subprocess.CompletedProcess) -> float:
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_RSS_KB"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no peak memory reported (exit {proc.returncode}): {proc.stderr[-1500:]}")
