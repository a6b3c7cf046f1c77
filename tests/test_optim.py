"""kit.temporal.optim: parameter groups, the optimizer, the learning rate schedule."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from kit.config import RunConfig
from kit.temporal.model import MultiTaskModel
from kit.temporal.optim import build_optimizer, decay_split, lr_at, param_groups


def _model() -> MultiTaskModel:
    return MultiTaskModel(12, {"action": ["a", "b", "c"], "stance": ["x", "y"]}, num_joints=5, use_pose=True,
                          pose_dim=8, channels=8, layers=2, stages=2)


def test_which_parameters_of_the_multitask_model_decay():
    decay, keep = decay_split(_model())
    assert decay == [
        "visual.1.weight", "pose.inp.weight", "pose.gcn.0.weight", "pose.gcn.1.weight", "pose.gcn.2.weight",
        "pose.out.weight",
        "tcn.stages.0.conv_in.weight", "tcn.stages.0.layers.0.conv_dilated.weight",
        "tcn.stages.0.layers.0.conv_1x1.weight", "tcn.stages.0.layers.1.conv_dilated.weight",
        "tcn.stages.0.layers.1.conv_1x1.weight", "tcn.stages.0.conv_out.weight",
        "tcn.stages.1.conv_in.weight", "tcn.stages.1.layers.0.conv_dilated.weight",
        "tcn.stages.1.layers.0.conv_1x1.weight", "tcn.stages.1.layers.1.conv_dilated.weight",
        "tcn.stages.1.layers.1.conv_1x1.weight", "tcn.stages.1.conv_out.weight"]
    assert "pose.joint_embed" in keep and "visual.0.weight" in keep and "pose.norms.0.weight" in keep
    assert all(n.endswith(".bias") or n in ("pose.joint_embed", "visual.0.weight") or ".norms." in n for n in keep)
    assert sorted(decay + keep) == sorted(n for n, _ in _model().named_parameters())


def test_groups_carry_decay_and_peak_lr_and_skip_frozen_and_shared_parameters():
    cfg = RunConfig(weight_decay=0.05, lr=3e-4)
    lin = nn.Linear(3, 3)
    model = nn.ModuleDict({"a": lin, "b": lin, "emb": nn.Embedding(5, 3), "bn": nn.BatchNorm1d(3),
                           "frozen": nn.Linear(3, 3).requires_grad_(False)})
    groups = param_groups(model, cfg, peak_lr=1e-5)
    assert [g["names"] for g in groups] == [["a.weight"], ["a.bias", "emb.weight", "bn.weight", "bn.bias"]]
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0] and {g["peak_lr"] for g in groups} == {1e-5}
    assert [g["peak_lr"] for g in param_groups(model, cfg)] == [3e-4, 3e-4]


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)])
def test_build_optimizer_steps_with_each_groups_decay(name, cls):
    cfg = RunConfig(optimizer=name, weight_decay=0.1, lr=1e-2)
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    opt = build_optimizer(cfg, param_groups(model, cfg))
    assert type(opt) is cls and [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all("names" not in g and "peak_lr" in g for g in opt.param_groups)
    model(torch.randn(2, 4)).sum().backward()
    before = model[1].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model[1].weight)


def test_lr_at_cosine_is_train_lr_at_unchanged():
    from kit.temporal.train import lr_at as train_lr_at

    for step in range(0, 120, 7):
        assert lr_at(step, 100, 10, 2.0) == train_lr_at(step, 100, 10, 2.0)
        assert lr_at(step, 100, 10, 2.0, "cosine") == train_lr_at(step, 100, 10, 2.0)
    assert lr_at(9, 100, 10, 2.0) == 2.0 and lr_at(100, 100, 10, 2.0) == 0.0
    assert math.isclose(lr_at(55, 100, 10, 2.0), 1.0)  # half-way through the decay


def test_lr_at_constant_warms_up_then_holds_the_peak():
    assert [lr_at(s, 50, 4, 1.0, "constant") for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert {lr_at(s, 50, 0, 5e-4, "constant") for s in range(60)} == {5e-4}  # MS-TCN: no warm-up, no decay
    with pytest.raises(ValueError, match="step"):
        lr_at(0, 10, 0, 1.0, "step")
