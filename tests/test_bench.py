"""``python -m kit bench``: the quick mode end to end, and the pieces its numbers rest on.

No assertion here is about speed: timings on a shared CI machine mean nothing. What is checked
is that every section runs and reports numbers, and that the counts behind them are right.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kit.bench import (SECTIONS, PeakMemory, clip_throughput, format_table, main_bench, seed_read_window,
                       videomae_flops)
from kit.data import DECODE_STATS, probe_video, read_frames, reset_decode_stats
from kit.data.windows import uniform_indices

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "kit", "bench", "--quick", "--threads", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(out.glob("*.json"))
    assert len(files) == 1 and files[0].with_suffix(".md").is_file()
    return proc.stdout, json.loads(files[0].read_text())


def _numbers(row: dict) -> list[float]:
    return [v for v in row.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def test_quick_bench_prints_and_records_every_section(quick_run):
    stdout, result = quick_run
    assert list(result["sections"]) == list(SECTIONS)
    for name, sec in result["sections"].items():
        assert "error" not in sec, sec
        assert sec["title"] in stdout, f"section {name} not printed"
        assert sec["rows"], f"section {name} has no rows"
        for row in sec["rows"]:
            nums = _numbers(row)
            assert len(nums) >= 4 and all(math.isfinite(v) for v in nums), (name, row)
    m = result["machine"]
    assert m["cpu"] and m["cores"] >= 1 and m["torch"] == torch.__version__ and m["date"]
    assert "Machine:" in stdout and m["cpu"] in stdout


def test_quick_bench_counts(quick_run):
    _, result = quick_run
    for row in result["sections"]["loader"]["rows"]:
        assert row["kit_conv"] == 16 and row["kit_conv_x"] <= 1.25  # exactly the frames the backbone uses
        assert row["seed_frames"] == row["T"] and row["kit_codec"] == row["T"]  # grab() still decodes them all
        assert row["match"] == 1.0  # both ways return the same pixels
    cache = result["sections"]["cache"]["rows"]
    assert cache[0]["on_cache_misses"] > 0 and cache[1]["on_cache_hits"] > 0 and cache[1]["on_frames_decoded"] == 0
    assert cache[1]["off_frames_decoded"] > 0
    backbone = result["sections"]["backbone"]
    if not torch.cuda.is_available():
        assert "skipped" in backbone["summary"]["gpu"] and "SKIPPED" in " ".join(backbone["notes"])
    axes = {r["axis"] for r in result["sections"]["scaling"]["rows"]}
    assert axes == {"videos", "T"}
    whole, windows = result["sections"]["two_stage"]["rows"]
    assert (whole["path"], windows["path"]) == ("whole_video", "windows")
    assert whole["codec_per_frame_with_eval"] == 1.0  # every frame decoded once over fit + evaluate
    assert windows["codec_per_frame_with_eval"] > 1.0
    serving = {r["what"]: r for r in result["sections"]["serving"]["rows"]}
    assert serving["evaluate, whole_video run"]["backbone_built"] == 0.0  # extracted features: no backbone
    assert serving["evaluate, windows run"]["backbone_built"] == 1.0
    assert all(r["ratio"] > 0 for r in result["sections"]["extract"]["rows"])


def test_videomae_base_count_is_180_gmacs():
    from transformers import VideoMAEConfig

    count = videomae_flops(VideoMAEConfig())
    assert count["tokens"] == 8 * 14 * 14 == 1568
    assert count["macs"] == pytest.approx(180e9, rel=0.01) and count["flops"] == 2 * count["macs"]
    assert count["gmacs"]["mlp"] > count["gmacs"]["qkv"] > count["gmacs"]["scores"]


def test_seed_baseline_returns_the_kits_frames(demo_root):
    path = demo_root / "Videos" / "demo_000.mp4"
    n = probe_video(path).num_frames
    for start, T in ((0, 120), (30, 64), (n - 40, 64)):  # the last window runs past the end: padding
        idx = (start + uniform_indices(T)).clamp(max=n - 1)
        reset_decode_stats()
        kit = read_frames(path, idx, 64)
        assert DECODE_STATS["frames_decoded"] == len(set(idx.tolist()))
        assert torch.equal(seed_read_window(path, start, T, 64), kit)


def test_peak_memory_sees_torch_cpu_allocations():
    with PeakMemory() as m:
        x = torch.ones(16 * 2**20)  # 64 MiB, invisible to tracemalloc
        del x
    if not m.method.startswith("VmHWM"):
        pytest.skip(f"no resettable RSS peak here ({m.method})")
    assert 60 <= m.mb < 200


def test_clip_throughput_reports_rates_against_the_peak():
    model = torch.nn.Linear(8, 8)
    r = clip_throughput(model, lambda b: torch.randn(b, 8), 4, "cpu", reps=3, warmup=1, flops=2e6, peak_tflops=1.0)
    assert r["batch"] == 4 and r["clips_s"] > 0 and r["s_per_clip"] == pytest.approx(1 / r["clips_s"])
    assert r["tflops"] == pytest.approx(r["clips_s"] * 2e6 / 1e12) and r["fraction_of_peak"] == r["tflops"]


def test_tables_and_arguments():
    rows = [dict(a=1, b=0.12345, c="x"), dict(a=22, b=12345.6, c="yy")]
    text = format_table(rows).splitlines()
    assert len(text) == 3 and text[0].split() == ["a", "b", "c"] and text[1].split() == ["1", "0.123", "x"]
    md = format_table(rows, markdown=True).splitlines()
    assert md == ["| a | b | c |", "|---|---|---|", "| 1 | 0.123 | x |", "| 22 | 12346 | yy |"]
    with pytest.raises(SystemExit):
        main_bench(["--sections", "nope"])


def test_gpu_sweep_code_path_runs_on_cpu(monkeypatch, tmp_path):
    """bench_gpu's logic with a small VideoMAE on the CPU (the CUDA-only calls stubbed)."""
    from transformers import VideoMAEConfig, VideoMAEModel

    import kit.bench as bench
    import kit.bench.models as models

    config = VideoMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                            attn_implementation="sdpa")
    monkeypatch.setattr(models, "videomae_base", lambda: (VideoMAEModel(config).eval(), config))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "stub")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    ctx = bench.Context(tmp_path, gpu_batches=(1, 2), gpu_reps=1, matmul_n_gpu=128)
    out = bench.bench_gpu(ctx, videomae_flops(config)["flops"], device="cpu")
    assert [r["batch"] for r in out["rows"]] == [1, 2] and out["matmul_bf16_tflops"] > 0
    assert all(r["dtype"] == "bfloat16" and r["tflops"] > 0 for r in out["rows"])
