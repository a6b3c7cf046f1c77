"""kit.temporal.model: shapes, masking, NaN keypoints, the MS-TCN loss, and that the model can learn."""
import math

import pytest
import torch

from kit.config import RunConfig
from kit.temporal.model import (COCO17_EDGES, ActionOnlyModel, MultiTaskModel, PoseGraphEncoder,
                       TemporalConvNet, build_model, class_weights_from_counts,
                       normalized_adjacency, pose_features, segmentation_loss)

VOCAB = {"action": ["idle", "jump", "walk_left", "walk_right", "wave"], "stance": ["a", "b", "c"]}
DV = 12
SMALL = dict(pose_dim=8, tcn_channels=16, tcn_layers=3, tcn_stages=2, dropout=0.0)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (tests/conftest.py)


def skeleton(B=2, T=10, J=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(B, T, J, 3, generator=g) * 100
    kp[..., 2] = 0.9
    return kp


def model_of(model_type="multitask", use_pose=True, **kw):
    torch.manual_seed(0)
    cfg = RunConfig(model_type=model_type, use_pose=use_pose, **{**SMALL, **kw})
    return build_model(cfg, DV, VOCAB).eval()


@pytest.mark.parametrize("model_type,cls,tasks", [("multitask", MultiTaskModel, ["action", "stance"]),
                                                  ("action_only", ActionOnlyModel, ["action"])])
@pytest.mark.parametrize("use_pose,give_pose", [(True, True), (True, False), (False, True)])
def test_shapes(model_type, cls, tasks, use_pose, give_pose):
    model = model_of(model_type, use_pose, tcn_stages=3)
    assert type(model) is cls and model.tasks == tasks
    B, T = 2, 10
    pose = skeleton(B, T) if give_pose else None
    out = model(torch.randn(B, T, DV), pose, torch.ones(B, T, dtype=torch.bool))
    assert len(out) == 3
    for stage in out:
        assert list(stage) == tasks
        for t in tasks:
            assert stage[t].shape == (B, T, len(VOCAB[t]))
            assert torch.isfinite(stage[t]).all()


def test_pose_changes_output_only_when_used():
    x, kp = torch.randn(2, 10, DV), skeleton()
    with_pose = model_of()
    assert not torch.allclose(with_pose(x, kp)[-1]["action"], with_pose(x, None)[-1]["action"])
    # has_pose False for a sample = the pose branch contributes zeros = no pose at all
    none = with_pose(x, None)[-1]["action"]
    masked = with_pose(x, kp, has_pose=torch.tensor([False, True]))[-1]["action"]
    assert torch.allclose(masked[0], none[0]) and not torch.allclose(masked[1], none[1])
    without = model_of(use_pose=False)
    assert without.pose is None
    assert torch.equal(without(x, kp)[-1]["action"], without(x, None)[-1]["action"])


def test_padding_is_inert():
    model = model_of()
    B, T, L = 2, 16, 11  # sample 0 has 11 real frames, sample 1 all 16
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, L:] = False
    x, kp = torch.randn(B, T, DV), skeleton(B, T)
    labels = {t: torch.randint(len(VOCAB[t]), (B, T)) for t in VOCAB}
    out = model(x, kp, mask)
    for stage in out:  # padded outputs are exactly zero
        assert all(stage[t][0, L:].abs().max() == 0 for t in VOCAB)
    x2, kp2 = x.clone(), kp.clone()
    x2[0, L:] = 1e3 * torch.randn(T - L, DV)
    x2[0, -1] = float("nan")
    kp2[0, L:] = float("nan")
    out2 = model(x2, kp2, mask)
    loss1, _ = segmentation_loss(out, labels, mask)
    loss2, _ = segmentation_loss(out2, labels, mask)
    assert torch.allclose(loss1, loss2)
    # stronger: real frames equal those of the unpadded sequence run alone
    alone = model(x[:1, :L], kp[:1, :L])
    for s_pad, s_alone in zip(out2, alone):
        for t in VOCAB:
            assert torch.allclose(s_pad[t][0, :L], s_alone[t][0], atol=1e-5)


def test_nan_keypoints_are_masked():
    enc = PoseGraphEncoder(17, 8).eval()
    kp = skeleton(1, 6)
    kp[0, 1, 3, :2] = float("nan")  # one joint missing
    kp[0, 2, 5, 2] = 0.0  # one joint with score 0
    kp[0, 3] = float("nan")  # a whole frame missing
    kp.requires_grad_(True)
    out = enc(kp)
    assert torch.isfinite(out).all()
    assert out[0, 3].abs().max() == 0  # no pose in that frame: zeros, like a missing pose
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
    # a masked joint's coordinates do not matter at all
    garbage = kp.detach().clone()
    garbage[0, 1, 3, :2] = torch.tensor([1e6, -1e6])
    garbage[0, 1, 3, 2] = 0.0
    assert torch.allclose(enc(garbage), out.detach(), atol=1e-6)


def test_pose_features_tell_left_from_right():
    B, T = 1, 8
    base = skeleton(1, 1).expand(1, T, 17, 3).clone()
    steps = torch.arange(T, dtype=torch.float32)[None, :, None] * 3.0
    left, right = base.clone(), base.clone()
    left[..., 0] -= steps
    right[..., 0] += steps
    nodes_l, shift_l, _ = pose_features(left)
    nodes_r, shift_r, _ = pose_features(right)
    assert torch.allclose(nodes_l, nodes_r, atol=1e-5)  # centring alone loses the direction ...
    assert torch.all(shift_l[0, 1:, 0] < 0) and torch.all(shift_r[0, 1:, 0] > 0)  # ... the shift keeps it
    assert torch.allclose(shift_l, -shift_r) and shift_l[0, 0].abs().max() == 0
    enc = PoseGraphEncoder(17, 16).eval()
    assert (enc(left)[0, 1:] - enc(right)[0, 1:]).abs().max() > 1e-3


def test_edges_rule_for_other_joint_counts():
    coco = normalized_adjacency(17, COCO17_EDGES)
    assert torch.allclose(PoseGraphEncoder(17).adj, coco) and coco[5, 6] > 0 and coco[0, 16] == 0
    # J != 17 and edges=None: no skeleton assumed, adjacency is the identity
    assert torch.equal(PoseGraphEncoder(5).adj, torch.eye(5))
    chain = PoseGraphEncoder(5, edges=[(0, 1), (1, 2)]).adj
    assert chain[0, 1] == chain[1, 0] > 0 and chain[3, 4] == 0
    assert torch.allclose(chain.sum(), normalized_adjacency(5, [(1, 0), (2, 1)]).sum())
    assert PoseGraphEncoder(5, 8)(skeleton(2, 4, J=5)).shape == (2, 4, 8)
    with pytest.raises(ValueError, match="outside 0..4"):
        PoseGraphEncoder(5, edges=[(0, 5)])


def test_wrong_shapes_raise():
    model = model_of()
    x = torch.randn(2, 10, DV)
    with pytest.raises(ValueError, match=r"expected \(B, T, 12\), got \(2, 10, 7\)"):
        model(torch.randn(2, 10, 7))
    with pytest.raises(ValueError, match=r"expected keypoints \(B, T, 17, 3\), got \(2, 10, 5, 3\)"):
        model(x, skeleton(2, 10, J=5))
    with pytest.raises(ValueError, match="pose expected"):
        model(x, skeleton(2, 9))
    with pytest.raises(ValueError, match="mask expected"):
        model(x, None, torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="got"):
        PoseGraphEncoder()(torch.randn(10, 17, 3))
    with pytest.raises(ValueError, match="no classes"):
        MultiTaskModel(DV, {"action": []})
    with pytest.raises(ValueError, match="no classes"):
        ActionOnlyModel(DV, {"stance": ["a"]})


def test_loss_equals_hand_computation():
    # one stage, one task, B=1, T=4, K=2; frame 1 unlabelled, frame 3 padding
    z = [[2.0, 0.0], [0.0, 1.0], [0.5, 0.5], [9.0, -9.0]]
    logits = torch.tensor([z], requires_grad=True)
    labels = {"action": torch.tensor([[0, -100, 1, 1]])}
    mask = torch.tensor([[True, True, True, False]])
    loss, parts = segmentation_loss([{"action": logits}], labels, mask, smooth_weight=0.15, smooth_tau=0.5)

    def logp(row):
        lse = math.log(sum(math.exp(v) for v in row))
        return [v - lse for v in row]

    ce = (-logp(z[0])[0] - logp(z[2])[1]) / 2  # frames 0 and 2 only
    pairs = [(1, 0), (2, 1)]  # pair (3, 2) touches padding
    sq = [min((logp(z[t])[k] - logp(z[s])[k]) ** 2, 0.25) for t, s in pairs for k in range(2)]
    smooth = 0.15 * sum(sq) / len(sq)
    assert loss.item() == pytest.approx(ce + smooth, rel=1e-6)
    assert parts["ce/action"] == pytest.approx(ce, rel=1e-6)
    assert parts["smooth/action"] == pytest.approx(smooth, rel=1e-6)
    assert parts["loss"] == pytest.approx(ce + smooth, rel=1e-6)
    loss.backward()
    assert logits.grad[0, 3].abs().max() == 0  # padding gets no gradient


def test_loss_ignore_index_class_and_task_weights():
    torch.manual_seed(0)
    B, T = 2, 6
    stage = {"action": torch.randn(B, T, 5), "stance": torch.randn(B, T, 3)}
    mask = torch.ones(B, T, dtype=torch.bool)
    labels = {"action": torch.randint(5, (B, T)), "stance": torch.full((B, T), -100)}
    labels["action"][0, :3] = -100
    loss, parts = segmentation_loss([stage, stage], labels, mask, smooth_weight=0.0)
    keep = labels["action"] != -100
    ref = torch.nn.functional.cross_entropy(stage["action"][keep], labels["action"][keep])
    assert loss.item() == pytest.approx(2 * ref.item(), rel=1e-6)  # two identical stages
    assert parts["ce/stance"] == 0.0 and math.isfinite(parts["loss"])  # no labelled frame: 0, no NaN
    w = class_weights_from_counts([1, 3, 0, 2, 2])
    wl, _ = segmentation_loss([stage], labels, mask, smooth_weight=0.0, class_weights={"action": w})
    ref_w = torch.nn.functional.cross_entropy(stage["action"][keep], labels["action"][keep], weight=w)
    assert wl.item() == pytest.approx(ref_w.item(), rel=1e-6)
    labels["stance"] = torch.randint(3, (B, T))
    both, _ = segmentation_loss([stage], labels, mask)
    only, _ = segmentation_loss([stage], labels, mask, task_weights={"stance": 0.0})
    act, _ = segmentation_loss([{"action": stage["action"]}], labels, mask)
    assert only.item() == pytest.approx(act.item()) and both.item() > only.item()


def test_class_weights_from_counts():
    w = class_weights_from_counts([10, 30, 0, 60])
    # 1/10 : 1/30 : 1/60 = 6 : 2 : 1, scaled to mean 1 over the three seen classes
    assert w.tolist() == pytest.approx([2.0, 2 / 3, 0.0, 1 / 3])
    with pytest.raises(ValueError):
        class_weights_from_counts([0, 0])


def test_tcn_stages_and_overfit():
    torch.manual_seed(0)
    tcn = TemporalConvNet(6, {"a": 3, "b": 2}, channels=16, layers=4, stages=2, dropout=0.0)
    T = 48
    labels = {"a": torch.tensor([[0] * 16 + [1] * 16 + [2] * 16]), "b": torch.tensor([[0] * 24 + [1] * 24])}
    # noisy features that carry the labels (pure noise would make the smoothing term fight CE)
    x = 0.5 * torch.randn(1, T, 6) + torch.randn(3, 6)[labels["a"]] + torch.randn(2, 6)[labels["b"]]
    mask = torch.ones(1, T, dtype=torch.bool)
    opt = torch.optim.Adam(tcn.parameters(), lr=5e-3)
    losses = []
    for _ in range(50):
        loss, _ = segmentation_loss(tcn(x, mask), labels, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.2 * losses[0]  # 3.8 -> about 0.4 (the smoothing term stays)
    pred = tcn(x, mask)[-1]["a"].argmax(-1)
    assert (pred == labels["a"]).float().mean() > 0.95
