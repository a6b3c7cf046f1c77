"""Performance properties that are facts, not timings: work skipped, memory not held, imports not paid.

- the pose branch is skipped where no video of a batch has keypoints, with the same results;
- ``evaluate`` starts without sklearn or matplotlib, and the numpy metrics equal scikit-learn's;
- extraction resizes only the frames its clips keep, with the same features;
- the temporal model over chunks (long videos) gives the whole sequence's result.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.config import RunConfig
from kit.temporal.model import MultiTaskModel, PoseGraphEncoder, segmentation_loss
from kit.temporal.sequences import collate_sequences

ROOT = Path(__file__).resolve().parents[1]
VOCAB = {"action": ["a", "b", "c"]}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (tests/conftest.py)


@pytest.fixture
def count_pose_calls(monkeypatch):
    calls = {"n": 0}
    real = PoseGraphEncoder.forward

    def counted(self, keypoints):
        calls["n"] += 1
        return real(self, keypoints)
    monkeypatch.setattr(PoseGraphEncoder, "forward", counted)
    return calls


def todays_forward(model: MultiTaskModel, visual, pose, mask, has_pose, loss_kw=None):
    """The forward before the skip: the pose graph on all-zero keypoints, times ``has_pose``."""
    B, T, _ = visual.shape
    if pose is None:
        pose = visual.new_zeros(B, T, model.pose.num_joints, 3)
    p = model.pose(pose) * has_pose.reshape(B, 1, 1).to(visual.dtype)
    x = torch.cat([model.visual(visual), p], -1)
    return model.tcn(x, mask) if loss_kw is None else model.tcn.training_loss(x, mask, **loss_kw)


def _item(n: int, D: int, pose: bool, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(n, 17, 3, generator=g) * 50 if pose else None
    return dict(feats=torch.randn(n, D, generator=g), labels={"action": torch.randint(0, 3, (n,), generator=g)},
                pose=kp, has_pose=torch.tensor(pose), mask=torch.ones(n, dtype=torch.bool), video_id=f"v{seed}",
                length=n)


@pytest.mark.parametrize("posed", [(False, False), (True, False)])
def test_pose_branch_skipped_without_keypoints_same_outputs_and_gradients(posed, count_pose_calls):
    torch.manual_seed(0)
    model = MultiTaskModel(8, VOCAB, pose_dim=8, channels=16, layers=3, stages=2, dropout=0.0)
    batch = collate_sequences([_item(30, 8, posed[0], 1), _item(20, 8, posed[1], 2)])
    assert (batch["pose"] is None) == (not any(posed))  # nothing materialised when nothing is carried
    args = (batch["feats"], batch["pose"], batch["mask"], batch["has_pose"])
    new = model(*args)
    assert count_pose_calls["n"] == int(any(posed))
    loss_new, _ = segmentation_loss(new, batch["labels"], batch["mask"])
    loss_new.backward()
    grads_new = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    old = todays_forward(model, *args)
    loss_old, _ = segmentation_loss(old, batch["labels"], batch["mask"])
    loss_old.backward()
    for s_new, s_old in zip(new, old):
        assert torch.equal(s_new["action"], s_old["action"])
    assert torch.equal(loss_new, loss_old)
    for k, p in model.named_parameters():
        if not k.startswith("pose."):
            assert torch.equal(grads_new[k], p.grad), k
        elif not any(posed):  # today: zero gradients; now: none (the branch did not run)
            assert k not in grads_new and not p.grad.any()


def test_training_without_keypoints_runs_no_pose_graph_same_history(demo_root, tmp_path, monkeypatch,
                                                                     count_pose_calls):
    from kit.temporal.train import fit

    data = tmp_path / "data"
    stems = {"demo_000": "train", "demo_001": "train", "demo_004": "val"}
    for sub, ext in (("Videos", "mp4"), ("Annotations", "csv")):  # no Poses/
        (data / sub).mkdir(parents=True)
        for stem in stems:
            shutil.copy(demo_root / sub / f"{stem}.{ext}", data / sub / f"{stem}.{ext}")
    (data / "splits.csv").write_text("video,split\n" + "".join(f"{k},{v}\n" for k, v in stems.items()))
    kw = dict(data_root=str(data), backbone="tiny", img_size=32, tcn_layers=3, tcn_channels=16, pose_dim=8,
              epochs=2, batch_size=2, use_pose=True, output_dir=str(tmp_path / "out"), seed=0)
    new = fit(RunConfig(run_name="skip", **kw)).history
    assert count_pose_calls["n"] == 0
    monkeypatch.setattr(MultiTaskModel, "forward", lambda self, v, p=None, m=None, h=None, loss_kw=None: todays_forward(
        self, v, p, m, torch.zeros(v.shape[0], dtype=torch.bool) if h is None else h, loss_kw))
    old = fit(RunConfig(run_name="today", **kw)).history
    assert count_pose_calls["n"] > 0  # the reference did run the graph
    cols = [c for c in new.columns if c.startswith(("train_loss", "val_")) and not c.endswith("_s")]
    assert "train_loss" in cols and np.array_equal(new[cols].to_numpy(), old[cols].to_numpy())


def test_evaluate_imports_neither_sklearn_nor_matplotlib():
    code = ("import sys, kit.results.evaluate, kit.__main__\n"
            "print(sorted(m for m in ('sklearn', 'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("kind", ["int", "str"])
def test_numpy_metrics_equal_sklearn(kind):
    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    from kit.temporal.metrics import confusion, macro_f1, per_class_report

    rng = np.random.default_rng(0)
    gts = [rng.integers(-1, 5, n) for n in (50, 80)]  # -1: a class unseen in training
    preds = [np.where(rng.random(len(g)) < 0.6, g, rng.integers(0, 6, len(g))) for g in gts]  # 5: never true
    if kind == "str":
        gts, preds = [[f"c{v}" for v in g] for g in gts], [[f"c{v}" for v in p] for p in preds]
    g, p = np.concatenate(gts), np.concatenate(preds)
    labels = [3, 0, 5, 1] if kind == "int" else ["c3", "c0", "c5", "c1"]  # not sorted, one never true
    assert macro_f1(preds, gts) == pytest.approx(100 * f1_score(g, p, labels=np.unique(g), average="macro",
                                                                zero_division=0), abs=1e-9)
    for lab in (labels, None):
        assert np.array_equal(confusion(preds, gts, lab), confusion_matrix(g, p, labels=lab))
        ours = per_class_report(preds, gts, labels=lab)
        ref = classification_report(g, p, labels=lab, output_dict=True, zero_division=0)
        for name, row in ours.iterrows():
            for col in ("precision", "recall", "f1-score"):
                assert row[col] == pytest.approx(100 * ref[name][col], abs=1e-9), (name, col)
            assert row["support"] == ref[name]["support"]
        assert len(ours) == len(lab if lab is not None else np.union1d(g, p))


@pytest.mark.parametrize("backend", ["opencv", "pyav"])
def test_iter_frames_keep_converts_only_kept_frames(demo_root, backend):
    from kit.data import DECODE_STATS, reset_decode_stats
    from kit.data.resize import Resize
    from kit.data.stream import iter_frames

    video = demo_root / "Videos" / "demo_000.mp4"
    every = list(iter_frames(video, Resize(32), backend=backend))
    reset_decode_stats()
    some = list(iter_frames(video, Resize(32), backend=backend, keep=lambda i: i % 3 == 0))
    assert len(some) == len(every) and DECODE_STATS["iter_decoded"] == len(every)
    assert DECODE_STATS["iter_converted"] == -(-len(every) // 3)
    for i, (a, b) in enumerate(zip(some, every)):
        assert (a is None) if i % 3 else np.array_equal(a, b)


def test_extraction_resizes_only_clip_frames_same_features(demo_root, tmp_path, monkeypatch):
    import kit.features.extract as ex
    from kit.data import DECODE_STATS, load_records, reset_decode_stats
    from kit.data.stream import iter_frames
    from kit.features.backbones import load_backbone

    records = [r for r in load_records(demo_root) if (r.num_frames - 1) % 2][:1]  # last frame not on the grid
    bb = load_backbone("tiny", img_size=32, frame_step=2)
    reset_decode_stats()
    ex.extract(records, bb, ex.store_for(bb, demo_root / "Videos", tmp_path / "new"), progress=False)
    n = records[0].num_frames
    assert DECODE_STATS["iter_converted"] == -(-n // 2) + 1 and DECODE_STATS["iter_decoded"] == n
    monkeypatch.setattr(ex, "iter_frames", lambda path, resize, keep=None: iter_frames(path, resize))  # today's
    ex.extract(records, bb, ex.store_for(bb, demo_root / "Videos", tmp_path / "old"), progress=False)
    new, old = (np.load(ex.store_for(bb, demo_root / "Videos", tmp_path / w).path(records[0].stem))
                for w in ("new", "old"))
    assert new.shape == (bb.feature_dim, n) and np.array_equal(new, old)


@pytest.mark.parametrize("with_pose,sample_rate", [(False, 1), (True, 2)])
def test_long_video_in_chunks_equals_one_pass(tmp_path, monkeypatch, with_pose, sample_rate):
    import kit.temporal.sequences as seq
    from kit.data.contract import VideoRecord

    torch.manual_seed(0)
    model = MultiTaskModel(6, VOCAB, pose_dim=8, channels=16, layers=3, stages=2, dropout=0.0).eval()
    with torch.no_grad():  # larger conv weights: frames at the edge of the receptive field visibly matter
        for name, p in model.named_parameters():
            if "conv" in name and name.endswith("weight"):
                p.mul_(3)
    halo = seq.receptive_halo(model)
    assert halo == 1 + 2 * (1 + 2 + 4)
    assert seq.receptive_halo(torch.nn.Sequential(model, torch.nn.MultiheadAttention(4, 1))) is None
    L = 701
    rng = np.random.default_rng(0)
    np.save(tmp_path / "v.npy", rng.standard_normal((6, L)).astype(np.float16))
    kp = (rng.random((L, 17, 3)) * 50).astype(np.float32) if with_pose else None
    rec = VideoRecord("v", None, None, None, L, 25.0, 0, 0, {"action": ["a"] * L}, keypoints=kp,
                      features_path=tmp_path / "v.npy")
    run = lambda: seq.predict_sequences(model, [rec], VOCAB, lambda r: r.features_path, torch.device("cpu"),  # noqa
                                        sample_rate=sample_rate)[0].probs["action"]
    whole = run()
    calls = {"n": 0}
    real = MultiTaskModel.forward

    def counted(self, *a):
        calls["n"] += 1
        return real(self, *a)
    monkeypatch.setattr(MultiTaskModel, "forward", counted)
    monkeypatch.setattr(seq, "CHUNK", 64)
    chunked = run()
    assert calls["n"] == -(-(-(-L // sample_rate)) // 64) > 1  # one forward per chunk
    assert whole.shape == chunked.shape == (L, 3)
    np.testing.assert_allclose(chunked, whole, atol=1e-4, rtol=0)  # float rounding, amplified by the x3 weights
    monkeypatch.setattr(seq, "receptive_halo", lambda m: halo - 2)  # too little context: the chunks' edges show
    assert np.abs(run() - whole).max() > 5e-4  # (deterministic: seeded; 1.5e-3 and 0.26 here)
