"""What every bench section shares: the machine's description, peak memory, tables, a measured fit()."""
from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import re
import resource
import time
from pathlib import Path

import cv2
import torch

from kit.config import RunConfig

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



def measured_fit(cfg: RunConfig):
    """``fit(cfg).history`` and the CPU (``mem.mb``) and CUDA (``mem.gpu_mb``, else None) peaks it added."""
    from kit.temporal.train import fit  # late: accelerate is slow to import and only sections 2 and 4 need it

    with contextlib.ExitStack() as stack:
        mem = stack.enter_context(PeakMemory())
        gpu = stack.enter_context(PeakMemory("cuda")) if torch.cuda.is_available() else None
        history = fit(cfg).history
    mem.gpu_mb = gpu.mb if gpu is not None else None
    return history, mem



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


