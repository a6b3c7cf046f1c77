"""Training: the windowed path's feature cache, and epoch time and memory against videos and window length."""
from __future__ import annotations

from kit.bench.common import measured_fit
from kit.config import RunConfig

N_USED = 16


def bench_cache(ctx) -> dict:
    h = {on: measured_fit(RunConfig(data_root=str(ctx.demo), backbone="tiny", epochs=ctx.cache_epochs,
                                    feature_cache=on, pipeline="windows", output_dir=str(ctx.work / f"cache_{on}"),
                                    run_name="bench", seed=0, **ctx.fit_kw))[0]
         for on in (False, True)}  # separate output_dirs: one run's disk cache cannot warm the other
    off, on = h[False], h[True]
    rows = [dict(epoch=e, off_train_s=float(off.train_s[e]), on_train_s=float(on.train_s[e]),
                 speedup=float(off.train_s[e] / on.train_s[e]), windows=int(on.windows[e]),
                 off_frames_decoded=int(off.frames_decoded[e]), on_frames_decoded=int(on.frames_decoded[e]),
                 on_cache_hits=int(on.cache_hits[e]), on_cache_misses=int(on.cache_misses[e])) for e in range(len(on))]
    warm_off, warm_on = float(off.train_s[1:].mean()), float(on.train_s[1:].mean())
    n, c = int(on.windows.iloc[-1]), ctx.fit_kw
    notes = [f"The windowed path (pipeline='windows'): fit() twice on the same demo data ({ctx.num_videos} videos, its "
             f"splits.csv), seed 0, frozen tiny backbone, img_size {c['img_size']}, train_T {c['train_T']}, "
             f"batch_size 2, {ctx.cache_epochs} "
             "epochs, separate output_dir per run. train_s: history.csv, the training loop only (validation "
             "excluded); frames_decoded counts training windows, the cache counters validation too. "
             f"visual_mode {c.get('visual_mode', RunConfig.visual_mode)}. Epoch 0 of the cached run "
             "decodes, embeds and writes the cache.",
             f"warm epochs (1+): uncached {warm_off:.3f} s, cached {warm_on:.3f} s: {warm_off / warm_on:.1f}x "
             f"(target >= 20x). Per window the cache saves {(warm_off - warm_on) / n * 1e3:.0f} ms (decode + "
             f"tiny backbone) and the head's training step, {warm_on / n * 1e3:.0f} ms, remains: with a "
             "backbone this cheap the ratio cannot exceed (saved + step) / step."]
    return dict(title="Windows: training epoch, frozen tiny backbone, feature cache off vs on", rows=rows, notes=notes,
                summary=dict(warm_off_s=warm_off, warm_on_s=warm_on, speedup_warm=warm_off / warm_on, windows=n,
                             clips_per_window=float(off.frames_decoded.iloc[-1]) / n / N_USED,
                             target_speedup=20.0))


def bench_scaling(ctx) -> dict:
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
                            test_fraction=0.0, pipeline="windows",
                            output_dir=str(ctx.work / f"scale_{n}_{T}"), run_name="bench", seed=0,
                            **(c | dict(train_T=T)))
            h, mem = measured_fit(cfg)
            w, H = int(h.windows[0]), cfg.img_size
            done[n, T] = dict(windows=w, train_s=float(h.train_s[0]), s_per_window=float(h.train_s[0]) / w,
                              conv_per_window=int(h.frames_decoded[0]) / w,
                              codec_per_window=int(h.frames_grabbed[0]) / w,
                              peak_mem_mb=mem.mb, **({} if mem.gpu_mb is None else dict(gpu_peak_mb=mem.gpu_mb)),
                              # the frames the backbone reads per window (16 per clip; tokens: C clips)
                              kit_batch_video_mb=2 * int(h.frames_decoded[0]) / w * 3 * H * H / 2**20,
                              seed_batch_video_mb=2 * T * 3 * H * H / 2**20)
        rows.append(dict(axis=axis, videos=n, T=T, **done[n, T]))
    notes = [f"The windowed path: fit(), 1 epoch, frozen tiny backbone, feature cache OFF (the real per-epoch cost), img_size "
             f"{c['img_size']}, batch_size 2, stride T/2, every video trains (val_fraction 0, no splits.csv). "
             "peak_mem_mb: RSS high-water mark of the whole fit() minus the RSS before it.",
             "conv/codec_per_window: frames converted (those the backbone uses; fewer when a short video's padding repeats "
             "its last frame) and frames the codec decoded, per window.",
             "kit/seed_batch_video_mb: one batch's uint8 video tensor, computed (B x S x 3 x H x W): the kit "
             "holds the S frames its backbone reads (16 per clip: 16 in clip mode, ceil(T / span) x 16 in "
             "tokens mode), the seed's way all T before it picks 16."]
    return dict(title="Windows: epoch time and memory vs videos and vs T (cache off)", rows=rows, notes=notes,
                summary=dict(points=len(rows), fits=len(done)))


