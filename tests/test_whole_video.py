"""The two-stage path: features once per video, the temporal model on whole videos.

The acceptance of the design: every video frame decoded exactly once across extraction, every epoch,
validation and evaluation; a killed extraction rerun gives byte-identical features and never reads a
partial file; feature files are what MS-TCN's loader reads (a plain np.load, (D, T)).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.config import RunConfig
from kit.data import DECODE_STATS, load_records, reset_decode_stats
from kit.data.demo import make_demo_data
from kit.data.video import codec_frames, converted_frames
from kit.features.backbones import load_backbone
from kit.features.extract import extract, store_for
from kit.features.store import FeatureStore
from kit.temporal.sequences import SequenceDataset, collate_sequences

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(backbone="tiny", img_size=32, tcn_layers=4, tcn_channels=16, pose_dim=16, batch_size=2)


@pytest.fixture(scope="module")
def demo6(tmp_path_factory) -> Path:
    """6 demo videos: 4 train, 1 val, 1 test."""
    return make_demo_data(tmp_path_factory.mktemp("demo6") / "demo_data", num_videos=6)


def test_a_frozen_run_decodes_every_frame_exactly_once(demo6, tmp_path):
    from kit.results.evaluate import evaluate
    from kit.temporal.train import fit

    records = load_records(demo6)
    total = sum(r.num_frames for r in records)
    reset_decode_stats()
    result = fit(RunConfig(data_root=str(demo6), output_dir=str(tmp_path), run_name="once", epochs=3, **SMALL))
    after_fit = dict(DECODE_STATS)
    evaluate(result.run_dir, split="test")
    evaluate(result.run_dir, split="val")
    assert codec_frames(after_fit) == total  # extraction of every split: each frame once
    step = SMALL.get("frame_step", RunConfig().frame_step)  # extraction converts the frames clips use, no other
    used = sum(-(-r.num_frames // step) + int((r.num_frames - 1) % step != 0) for r in records)
    assert codec_frames() == total and converted_frames() == used  # training, validation, evaluate: none
    assert DECODE_STATS["seeks"] == 0  # (probe_frames: the header check and PyAV's 3-frame check per file)
    h = result.history
    assert (h.frames_grabbed == 0).all() and len(h) == 3 and h.videos.iloc[0] == 4  # epochs read features only
    assert json.loads((result.run_dir / "eval_test.json").read_text())["pipeline"] == "whole_video"


def test_features_are_what_mstcn_reads_and_follow_the_video(demo6, tmp_path):
    records = load_records(demo6)[:2]
    bb = load_backbone("tiny", img_size=32, frame_step=2)
    store = store_for(bb, demo6 / "Videos", tmp_path)
    done = extract(records, bb, store, progress=False)
    assert [d.skipped for d in done] == [False, False]
    for r in records:
        a = np.load(store.path(r.stem))  # MS-TCN: np.load(features_path + vid + '.npy')
        assert a.shape == (bb.feature_dim, r.num_frames) and a.dtype == np.float16 and np.isfinite(a).all()
        info = json.loads(store.sidecar(r.stem).read_text())
        assert info["shape"] == [bb.feature_dim, r.num_frames] and info["clips"] == -(-r.num_frames // 32)
    manifest = store.manifest()
    assert manifest["fingerprint"] == bb.fingerprint and manifest["backbone"]["resize"]["mode"] == "crop"
    assert [d.skipped for d in extract(records, bb, store, progress=False)] == [True, True]  # current: skipped
    os.utime(records[0].video_path, ns=(1, 1))  # the video changed: exactly that one is redone
    records = load_records(demo6)[:2]  # (the process that changed it reloads its records)
    assert [d.skipped for d in extract(records, bb, store, progress=False)] == [False, True]
    other = store_for(load_backbone("tiny", img_size=32, frame_step=1), demo6 / "Videos", tmp_path)
    assert other.root != store.root  # another clip geometry: another store, never stale features


def test_sequences_pad_mask_subsample_and_crop(demo6, tmp_path):
    records = load_records(demo6)[:3]
    bb = load_backbone("tiny", img_size=32)
    store = store_for(bb, demo6 / "Videos", tmp_path)
    extract(records, bb, store, progress=False)
    vocab = {"action": sorted({v for r in records for v in r.labels["action"]})}
    ds = SequenceDataset(records, vocab, lambda r: store.path(r.stem), sample_rate=2)
    ds.set_epoch(0, shuffle=False)
    items = [ds[i] for i in range(3)]
    assert [it["length"] for it in items] == [-(-r.num_frames // 2) for r in records]
    batch = collate_sequences(items)
    L = max(it["length"] for it in items)
    assert batch["feats"].shape == (3, L, 64) and batch["mask"].sum(1).tolist() == [it["length"] for it in items]
    assert (batch["labels"]["action"][~batch["mask"]] == -100).all()
    torch.testing.assert_close(items[0]["feats"], torch.from_numpy(np.load(store.path(records[0].stem))[:, ::2].T
                                                                   .astype(np.float32)))
    cropped = SequenceDataset(records, vocab, lambda r: store.path(r.stem), max_len=50, seed=1)
    L = records[0].num_frames
    cover = np.zeros(L)
    for epoch in range(400):
        cropped.set_epoch(epoch, shuffle=False)
        a, b = cropped._crop(0, L)
        assert cropped[0]["length"] == b - a and 1 <= b - a <= 50
        cover[a:b] += 1
    # crops start anywhere in [-(max_len-1), L-1]: the ends of a video are trained as often as its middle
    assert cover.min() > 0.6 * cover.mean()


KILL = textwrap.dedent("""
    import os, signal, sys
    import kit.features.extract as ex
    from kit.data import load_records
    from kit.features.backbones import load_backbone
    ex.CHUNK = 40  # write the array in several chunks
    calls = []
    real = ex.Backbone.spread
    def dying(self, *a, **k):
        calls.append(1)
        if len(calls) == 8:  # second video, its array half written
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *a, **k)
    ex.Backbone.spread = dying
    records = load_records(sys.argv[1])[:3]
    bb = load_backbone("tiny", img_size=32)
    store = ex.store_for(bb, records[0].video_path.parent, sys.argv[2])
    ex.extract(records, bb, store, progress=False)
""")


def test_killed_extraction_leaves_no_readable_partial_and_reruns_byte_identical(demo6, tmp_path):
    records = load_records(demo6)[:3]
    proc = subprocess.run([sys.executable, "-c", KILL, str(demo6), str(tmp_path / "killed")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    bb = load_backbone("tiny", img_size=32)
    store = store_for(bb, demo6 / "Videos", tmp_path / "killed")
    first, second = records[0].stem, records[1].stem
    assert store.is_current(first, records[0].video_path)
    assert store.partial(second).is_file() and not store.path(second).exists()  # half written, hidden
    assert not store.is_current(second, records[1].video_path) and store.stems() == [first]
    clean = store_for(bb, demo6 / "Videos", tmp_path / "clean")
    extract(records, bb, clean, progress=False)
    done = extract(records, bb, store, progress=False)  # the rerun: only what is missing
    assert [d.skipped for d in done] == [True, False, False]
    assert not store.partial(second).exists()
    for r in records:
        assert store.path(r.stem).read_bytes() == clean.path(r.stem).read_bytes()


def test_store_refuses_another_backbones_folder(tmp_path):
    store = FeatureStore(tmp_path / "s")
    store.init({"fingerprint": "a"}, "float16")
    store.init({"fingerprint": "a"}, "float16")  # the same: fine
    with pytest.raises(ValueError, match="other features"):
        store.init({"fingerprint": "b"}, "float16")
