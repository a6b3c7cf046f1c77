"""Loader: the kit's 16 frames of a window (read_frames) against the original script's decode-all."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch

from kit.config import project_root
from kit.data import DECODE_STATS, VIDEO_EXTS, probe_video, read_frames, reset_decode_stats
from kit.data.windows import uniform_indices

N_USED = 16  # frames per window the original script feeds the backbone

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


def bench_loader(ctx) -> dict:
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
    return dict(title="Loader (windows): the kit's 16 frames vs the seed's all-T decode", rows=rows, notes=notes,
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


