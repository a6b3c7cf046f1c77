"""Time and memory of a backbone forward, for notebook 02 (:func:`time_forward`).

Inference only, no gradients. On CUDA the memory is the allocator's peak
(``torch.cuda.max_memory_allocated``); on CPU it is the peak rise of the process's resident memory,
sampled while the forward runs (:class:`_PeakRSS`), an estimate. The result says which.

Legend: ``B`` batch, ``T`` frames in a window, ``H, W`` frame size, ``F`` frames per clip,
``C`` clips per window.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time

import numpy as np
import torch

from kit.features.backbones import Backbone
from kit.results.inspect import default_device

__all__ = ["time_forward"]


class _PeakRSS:
    """Peak resident memory (RSS, bytes) of this process while the block runs, sampled every ms.

    ``rise`` is the peak minus the RSS before the block. Freed memory is first handed back to the
    system (glibc ``malloc_trim``) so that the block has to grow RSS again for what it needs;
    without that, memory kept from an earlier forward hides the cost. psutil comes with accelerate.
    """

    method = ("CPU: peak rise of the process's resident memory (RSS) during one forward, sampled every 1 ms "
              "with psutil after returning freed memory to the system; an estimate")

    def __enter__(self):
        import psutil

        gc.collect()
        try:
            ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
        except (OSError, AttributeError, TypeError):  # not glibc: measure as is
            pass
        proc = psutil.Process()
        self._read = lambda: proc.memory_info().rss
        self.base = self.peak = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._read())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read())
        return False

    @property
    def rise(self) -> int:
        return max(0, self.peak - self.base)


@torch.no_grad()
def time_forward(backbone: Backbone, video: torch.Tensor, repeats: int = 3,
                 device: str | torch.device | None = None) -> dict:
    """Forward time and peak memory of the backbone on whole windows (inference, no gradients).

    Moves the backbone to ``device`` (default CUDA when available, else CPU). Memory of the
    first forward: on CUDA ``torch.cuda.max_memory_allocated`` (``peak_memory_mb``: minus what
    was allocated before, i.e. weights and input; ``process_peak_mb``: all of it); on CPU the
    resident memory of the process sampled with psutil (``memory_method`` says which). Times
    are the median of ``repeats`` forwards after that first one.

    Shapes:
        video ``(B, T, 3, H, W)``; a clip is ``F`` sampled frames, ``B * C`` clips per call.
    """
    if video.ndim != 5:
        raise ValueError(f"video must be (B, T, 3, H, W), got shape {tuple(video.shape)}")
    device = torch.device(device) if device else default_device()
    backbone.to(device)
    video = video.to(device)
    B, T = video.shape[:2]
    clips = B * backbone.num_clips(T)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        backbone(video)
        torch.cuda.synchronize(device)
        total = torch.cuda.max_memory_allocated(device)
        rise, method = total - base, "CUDA: torch.cuda.max_memory_allocated during one forward"
    else:
        with _PeakRSS() as rss:
            backbone(video)
        rise, total, method = rss.rise, rss.peak, rss.method
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        backbone(video)
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    mib = 2.0**20
    return {"backbone": backbone.name, "mode": backbone.mode, "device": str(device),
            "threads": None if cuda else torch.get_num_threads(), "window_T": T, "batch": B,
            "clips_per_call": clips, "frames_per_clip": backbone.num_frames, "img_size": backbone.img_size,
            "seconds_per_call": round(sec, 6), "seconds_per_clip": round(sec / clips, 6),
            "clips_per_second": round(clips / sec, 2), "peak_memory_mb": round(rise / mib, 1),
            "peak_memory_mb_per_clip": round(rise / mib / clips, 1), "process_peak_mb": round(total / mib, 1),
            "memory_method": method, "repeats": max(1, repeats)}
