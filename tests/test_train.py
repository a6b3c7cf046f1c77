"""The training loop on the demo data with the tiny backbone (CPU): learning, resume, cache, CLI."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kit.config import RunConfig
from kit.data import load_records, read_frames, split_records
from kit.data.demo import make_demo_data
from kit.files import load_checkpoint, save_checkpoint
from kit.data.windows import train_windows
from kit.temporal.train import OOM_HELP, fit, lr_at

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(backbone="tiny", img_size=32, train_T=64, val_T=64, batch_size=1, tcn_layers=6,
             tcn_channels=32, pose_dim=32, lr=3e-3, warmup_steps=5)
WINDOWS = dict(SMALL, pipeline="windows", batch_size=4)


@pytest.fixture(scope="module")
def demo10(tmp_path_factory) -> Path:
    """10 videos (8 train, 1 val, 1 test): enough for the tiny model to learn something."""
    return make_demo_data(tmp_path_factory.mktemp("demo10") / "demo_data", num_videos=10)


@pytest.fixture(scope="module")
def trained(demo10, tmp_path_factory):
    """Whole videos (the default path): 40 epochs of the 8 training videos, one per step (320 steps)."""
    out = tmp_path_factory.mktemp("runs")
    cfg = RunConfig(data_root=str(demo10), epochs=40, output_dir=str(out), run_name="learn", **SMALL)
    return cfg, fit(cfg)


@pytest.fixture(scope="module")
def trained_windows(demo10, tmp_path_factory):
    """The windowed path with its feature cache: 4 epochs of 64-frame windows."""
    out = tmp_path_factory.mktemp("runs_windows")
    cfg = RunConfig(data_root=str(demo10), epochs=4, output_dir=str(out), run_name="windows", **WINDOWS)
    return cfg, fit(cfg)


def _kit(*args, cwd=ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kit", *args], cwd=cwd, capture_output=True, text=True, **kw)


def test_lr_schedule_is_warmup_then_cosine():
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.5, abs=0.02)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.01


def test_loss_falls_and_beats_majority(trained, demo10):
    cfg, result = trained
    h = result.history
    assert len(h) == cfg.epochs
    assert h.train_loss.iloc[-1] < 0.6 * h.train_loss.iloc[0]
    val = split_records(load_records(demo10), str(demo10 / "splits.csv"))["val"]
    gt = np.concatenate([r.labels["action"] for r in val])
    majority = 100 * pd.Series(gt).value_counts(normalize=True).iloc[0]
    assert h.val_action_acc.max() > majority + 10, (h.val_action_acc.tolist(), majority)
    run = result.run_dir
    for name in ("config.json", "labels.json", "splits.json", "history.csv", "metrics.json", "last.pt",
                 "best.pt", "train.log"):
        assert (run / name).is_file(), name
    assert RunConfig.load(run / "config.json") == cfg
    assert json.loads((run / "labels.json").read_text())["action"] == sorted(
        {"idle", "walk_left", "walk_right", "jump", "wave"})
    best = load_checkpoint(run / "best.pt")
    assert best["epoch"] == result.best_epoch == json.loads((run / "metrics.json").read_text())["epoch"]
    assert set(best) >= {"model", "optimizer", "scheduler", "scaler", "rng", "epoch", "config"}


def test_cache_second_epoch_reads_no_video_and_matches_recomputation(trained_windows, demo10):
    cfg, result = trained_windows
    h = result.history
    assert h.frames_decoded.iloc[0] > 0 and h.cache_misses.iloc[0] > 0
    assert (h.frames_decoded.iloc[1:] == 0).all() and (h.cache_misses.iloc[1:] == 0).all()
    assert (h.cache_hits.iloc[1:] > 0).all()
    # every cached entry equals the backbone run afresh on freshly decoded frames
    from kit.features.extract import backbone_for
    from kit.temporal.windowed import CachedWindows, feature_cache
    backbone = backbone_for(cfg)
    cache = feature_cache(backbone, cfg)
    train = split_records(load_records(demo10), str(demo10 / "splits.csv"))["train"]
    windows = train_windows([r.num_frames for r in train], cfg.train_T, cfg.train_stride)
    ds = CachedWindows(train, {"action": []}, windows[:3], backbone, cache)
    for i in range(3):
        w = windows[i]
        frames = w.decoded(backbone.sample_positions(w.T), train[w.video].num_frames)
        fresh = backbone.embed(read_frames(train[w.video].video_path, frames, backbone.resize)[None])[0]
        torch.testing.assert_close(cache.get(ds.key(i)), fresh, rtol=1e-5, atol=1e-6)


def test_changed_video_is_a_cache_miss(trained, tmp_path):
    cfg, _ = trained
    from kit.features.cache import FeatureCache
    from kit.data.video import video_key
    cache = FeatureCache("fp", tmp_path)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    key = cache.key(video_key(video), torch.arange(16))
    cache.put(key, torch.ones(2, 3))
    assert key in FeatureCache("fp", tmp_path)  # on disk
    assert key not in FeatureCache("other backbone", tmp_path)
    assert cache.key(video_key(video), torch.arange(1, 17)) != key
    os.utime(video, ns=(1, 1))
    assert cache.key(video_key(video), torch.arange(16)) != key


def test_same_seed_same_history(trained, demo10):
    cfg, result = trained
    short = cfg.replace(epochs=3, seed=5)  # features come from the cache the first run filled
    a, b = fit(short.replace(run_name="same-a")), fit(short.replace(run_name="same-b"))
    cols = [c for c in a.history.columns if c.startswith(("train_loss", "val_")) and not c.endswith("_s")]
    pd.testing.assert_frame_equal(a.history[cols], b.history[cols], check_exact=True)
    c = fit(short.replace(run_name="other-seed", seed=6))
    assert not np.allclose(a.history.train_loss, c.history.train_loss)


def test_resume_after_sigkill_matches_uninterrupted(demo10, tmp_path):
    flags = ["train", "--data_root", str(demo10), "--backbone", "tiny", "--img_size", "32", "--train_T", "64",
             "--val_T", "64", "--batch_size", "4", "--tcn_layers", "4", "--tcn_channels", "16",
             "--epochs", "25", "--seed", "3", "--output_dir", str(tmp_path)]
    full = _kit(*flags, "--run_name", "full", timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]
    proc = subprocess.Popen([sys.executable, "-m", "kit", *flags, "--run_name", "killed"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "killed" / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(pd.read_csv(history)) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(pd.read_csv(history))
    assert done < 25
    resumed = _kit(*flags, "--run_name", "killed", "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed killed" in resumed.stderr
    a = pd.read_csv(tmp_path / "full" / "history.csv")
    b = pd.read_csv(history)
    cols = [c for c in a.columns if c.startswith(("train_loss", "val_")) and not c.endswith("_s")]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=False, rtol=1e-5)
    assert json.loads((tmp_path / "full" / "metrics.json").read_text())["val_action_acc"] == pytest.approx(
        json.loads((tmp_path / "killed" / "metrics.json").read_text())["val_action_acc"])


def test_kill_during_checkpoint_write_keeps_previous(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})
    script = textwrap.dedent(f"""
        import os, signal, torch
        import kit.files as files
        def dying_save(obj, f):
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = dying_save
        files.save_checkpoint({str(path)!r}, {{"epoch": 2, "w": torch.zeros(3)}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))


def test_truncated_checkpoint_error_names_file(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="last.pt"):
        load_checkpoint(bad)


def test_resume_without_checkpoint_says_so(demo10, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(RunConfig(data_root=str(demo10), output_dir=str(tmp_path), run_name="none", resume=True, **SMALL))


def test_nonfinite_loss_stops_with_message(demo10, tmp_path, monkeypatch):
    import kit.temporal.model as model  # every temporal model's training_loss calls it from there

    def nan_loss(*a, **k):
        return torch.tensor(float("nan"), requires_grad=True), {}
    monkeypatch.setattr(model, "segmentation_loss", nan_loss)
    with pytest.raises(FloatingPointError, match="Lower lr"):
        fit(RunConfig(data_root=str(demo10), output_dir=str(tmp_path), run_name="nan", epochs=1, **SMALL))


def test_cuda_oom_gives_remedies(demo10, tmp_path, monkeypatch):
    import kit.temporal.sequences as sequences

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(sequences.SequencePath, "forward", oom)
    with pytest.raises(RuntimeError) as e:
        fit(RunConfig(data_root=str(demo10), output_dir=str(tmp_path), run_name="oom", epochs=1, **SMALL))
    assert str(e.value) == OOM_HELP
    assert "batch_size" in OOM_HELP and "max_len" in OOM_HELP and "vit2d" in OOM_HELP


def test_cli_with_the_seed_flags(demo10, tmp_path):
    r = _kit("train", "--annotations", str(demo10 / "Annotations"), "--videos", str(demo10 / "Videos"),
             "--model_type", "action_only", "--epochs", "1", "--batch_size", "2", "--train_T", "120",
             "--val_T", "120", "--backbone", "tiny", "--img_size", "32", "--output_dir", str(tmp_path),
             "--run_name", "seed", "--seed", "3", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = RunConfig.load(tmp_path / "seed" / "config.json")
    assert (cfg.model_type, cfg.train_T, cfg.val_T, cfg.batch_size, cfg.seed) == ("action_only", 120, 120, 2, 3)
    assert json.loads((tmp_path / "seed" / "labels.json").read_text()).keys() == {"action"}
    assert "run folder:" in r.stdout


def test_cli_help_documents_every_field():
    r = _kit("train", "--help", timeout=60)
    assert r.returncode == 0
    from kit.config import field_names
    for name in field_names():
        assert f"--{name}" in r.stdout, name


def test_cli_rejects_bad_values(tmp_path):
    r = _kit("train", "--visual_mode", "bogus", timeout=60)
    assert r.returncode != 0 and "visual_mode" in r.stderr
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"epochs": 2, "epoch": 3}))
    r = _kit("train", "--config", str(bad), timeout=60)
    assert r.returncode != 0 and "unknown RunConfig field(s): epoch" in r.stderr


def test_two_process_run_counts_the_same_global_batches(demo10, tmp_path):
    pytest.importorskip("accelerate")
    cfg = dict(data_root=str(demo10), backbone="tiny", img_size=32, epochs=1, tcn_layers=4)
    n = len(split_records(load_records(demo10), str(demo10 / "splits.csv"))["train"])  # whole videos
    batch = next(b for b in (1, 2, 3, 4) if n % (2 * b) == 0)  # no padding by accelerate
    args = [f"--{k}={v}" for k, v in cfg.items()] + [f"--batch_size={batch}", f"--output_dir={tmp_path}"]
    one = _kit("train", *args, "--run_name=one", timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    # torchrun sets the same env:// rendezvous that `accelerate launch` does on GPUs; on CPU it's gloo
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "-m", "kit", "train", *args, "--run_name=two"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    h1, h2 = (pd.read_csv(tmp_path / r / "history.csv").iloc[0] for r in ("one", "two"))
    assert (h1.processes, h2.processes) == (1, 2)
    assert h1.global_batches == h2.global_batches == math.ceil(n / batch)
    assert h1.videos == h2.videos == n  # each process extracted its share of the features, then all trained
    rng = torch.load(tmp_path / "two" / "last.pt", map_location="cpu", weights_only=True)["rng"]
    assert isinstance(rng, list) and len(rng) == 2  # each process's random state, restored per rank on resume


def test_cached_embeddings_fills_only_what_is_missing():
    from kit.features.backbones import load_backbone
    from kit.features.cache import FeatureCache
    from kit.temporal.windowed import cached_embeddings

    backbone = load_backbone("tiny", img_size=32, mode="clip")
    cache = FeatureCache(backbone.fingerprint)
    video = torch.randint(0, 256, (2, 16, 3, 32, 32), dtype=torch.uint8)
    fresh = backbone.embed(video)
    cache.put("a", torch.full_like(fresh[0], 7.0))  # row 0 was cached after its item was loaded
    batch = {"feat_key": ["a", "b"], "video": video, "video_rows": [0, 1]}
    out = cached_embeddings(backbone, batch, cache, torch.device("cpu"))
    assert torch.equal(out[0], torch.full_like(fresh[0], 7.0))  # the cache wins, no overwrite
    torch.testing.assert_close(out[1], fresh[1])
    torch.testing.assert_close(cache.get("b"), fresh[1])
    with pytest.raises(RuntimeError, match="disappeared"):
        cached_embeddings(backbone, {"feat_key": ["a", "zzz"], "video": None, "video_rows": []}, cache,
                          torch.device("cpu"))


def test_resume_uses_the_saved_config_and_refuses_changes(trained, tmp_path):
    import shutil
    cfg, result = trained
    run = tmp_path / "copy"
    shutil.copytree(result.run_dir, run)
    with pytest.raises(ValueError, match="lr=0.5"):
        fit(cfg.replace(output_dir=str(tmp_path), run_name="copy", resume=True, lr=0.5))
    # only the run's name, place and a longer schedule: everything else comes from config.json
    more = fit(RunConfig(output_dir=str(tmp_path), run_name="copy", resume=True, epochs=cfg.epochs + 1))
    assert len(more.history) == cfg.epochs + 1
    saved = RunConfig.load(run / "config.json")
    assert saved.data_root == cfg.data_root and saved.backbone == "tiny" and saved.epochs == cfg.epochs + 1


def test_evaluate_refuses_a_different_backbone(trained, tmp_path):
    import shutil
    from kit.results.evaluate import evaluate
    _, result = trained
    run = tmp_path / "copy"
    shutil.copytree(result.run_dir, run)
    state = load_checkpoint(run / "best.pt")
    state["backbone_fingerprint"] = "vit2d-tokens-224px-16f-0123456789ab"
    save_checkpoint(run / "best.pt", state)
    with pytest.raises(ValueError, match="trained with backbone vit2d"):
        evaluate(run)


def test_pose_branch_stays_in_the_graph_without_keypoints():
    """DDP needs every trainable parameter in every step: videos without keypoints pass zero poses."""
    from kit.temporal.model import build_model, segmentation_loss
    head = build_model(RunConfig(tcn_layers=2, tcn_channels=8, pose_dim=8), 16, {"action": ["a", "b"]})
    mask = torch.ones(2, 12, dtype=torch.bool)
    stages = head(torch.randn(2, 12, 16), torch.zeros(2, 12, 17, 3), mask)  # what the loader gives: zeros
    loss, _ = segmentation_loss(stages, {"action": torch.zeros(2, 12, dtype=torch.long)}, mask)
    loss.backward()
    assert all(p.grad is not None for p in head.parameters() if p.requires_grad)


def test_finetuning_trains_the_backbone_at_its_own_rate(demo10, tmp_path):
    from kit.features.extract import backbone_for
    cfg = RunConfig(data_root=str(demo10), output_dir=str(tmp_path), run_name="ft", epochs=1, freeze_backbone=False,
                    backbone_lr=1e-4, **{**SMALL, "train_T": 48, "val_T": 48, "batch_size": 4})
    assert cfg.resolved_pipeline == "windows"  # a trained backbone: windows, decoded every epoch
    result = fit(cfg)
    state = load_checkpoint(result.run_dir / "last.pt")
    assert state["model"]["backbone"], "a trained backbone is saved with the head"
    groups = state["optimizer"]["param_groups"]  # head then backbone, each split into decay / no decay
    assert [g["peak_lr"] for g in groups] == [cfg.lr, cfg.lr, 1e-4, 1e-4]
    assert [g["weight_decay"] for g in groups] == [cfg.weight_decay, 0.0, cfg.weight_decay, 0.0]
    before = backbone_for(cfg).state_dict()
    moved = [k for k, v in state["model"]["backbone"].items() if v.dtype.is_floating_point
             and not torch.equal(v, before[k])]
    assert moved, "fine-tuning left every backbone weight unchanged"
    assert result.history.frames_decoded.iloc[0] > 0  # no feature cache for a trainable backbone
    assert not (tmp_path / ".feature_cache").exists()
