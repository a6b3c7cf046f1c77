"""MS-TCN (Farha & Gall, CVPR 2019): stages of dilated residual convolutions, each refining the last.

Legend: ``B`` batch, ``T`` frames, ``D`` input width, ``C`` channels, ``ΣK`` all tasks' classes.

Upstream: github.com/yabufarha/ms-tcn ``model.py`` (``MultiStageModel``, ``SingleStageModel``,
``DilatedResidualLayer``). The kit's module names differ from upstream's (``stages.0`` is upstream's
``stage1``, ``stages.s`` its ``stages.{s-1}``; ``conv_in`` its ``conv_1x1``): :data:`UPSTREAM` maps them.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from kit.temporal.models.common import StagedModel, count_indices


class _DilatedResidual(nn.Module):
    """MS-TCN's layer: dilated conv (kernel 3), ReLU, 1x1 conv, dropout, residual, mask."""

    def __init__(self, dilation: int, channels: int, dropout: float):
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:  # (B, C, T), (B, 1, T)
        return (x + self.dropout(self.conv_1x1(F.relu(self.conv_dilated(x))))) * m


class _Stage(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, channels: int, layers: int, dropout: float):
        super().__init__()
        self.conv_in = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(_DilatedResidual(2 ** i, channels, dropout) for i in range(layers))
        self.conv_out = nn.Conv1d(channels, out_dim, 1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x) * m  # masked here too, so padding never carries conv_in's bias
        for layer in self.layers:
            h = layer(h, m)
        return self.conv_out(h) * m  # (B, ΣK, T)


class TemporalConvNet(StagedModel):
    """Multi-stage TCN (MS-TCN, Farha & Gall 2019) with one output block per task.

    Stage 1 maps the features to every task's logits (concatenated along channels); stage
    ``s > 1`` takes the per-task probabilities of stage ``s - 1`` and refines it. All layers are
    multiplied by the mask, so real frames never see padded inputs and padded outputs are 0.

    Args:
        in_dim: input width ``D``; num_classes: {task: K}; channels: upstream ``num_f_maps``;
        layers: dilated layers per stage (dilation ``2**i``); stages: upstream ``num_stages``.

    Shapes:
        x: (B, T, D); mask: (B, T) bool, True for real frames (None = all real).
        returns: list over stages of {task: (B, T, K_task)} logits.
    """

    name = "mstcn"

    def __init__(self, in_dim: int, num_classes: Mapping[str, int], channels: int = 64,
                 layers: int = 8, stages: int = 2, dropout: float = 0.3, *, multilabel=()):
        super().__init__(in_dim, num_classes, multilabel)
        self.stages = nn.ModuleList(
            _Stage(in_dim if s == 0 else self.total, self.total, channels, layers, dropout) for s in range(stages))

    def stage_logits(self, x: torch.Tensor, m: torch.Tensor) -> list[torch.Tensor]:
        out = self.stages[0](x, m)  # (B, ΣK, T)
        outputs = [out]
        for stage in self.stages[1:]:
            out = stage(self.probs(out, m), m)  # ms-tcn model.py:21 softmax(out) * mask
            outputs.append(out)
        return outputs

    @classmethod
    def upstream_names(cls, state_dict: Mapping[str, torch.Tensor]) -> dict[str, str]:
        """yabufarha/ms-tcn ``MultiStageModel`` names -> the kit's (``stage1.conv_1x1.weight`` ->
        ``stages.0.conv_in.weight``, ``stages.0.layers.3.conv_1x1.weight`` -> ``stages.1.layers.3.conv_1x1.weight``)."""
        out = {}
        for name in state_dict:
            m = re.fullmatch(r"(stage1|stages\.(\d+))\.(.+)", name)
            if not m:
                raise ValueError(f"{name!r} is not a parameter of upstream MS-TCN (stage1.* or stages.<s>.*)")
            s = 0 if m.group(1) == "stage1" else int(m.group(2)) + 1
            rest = re.sub(r"^conv_1x1\.", "conv_in.", m.group(3))  # the stage's input conv; layers keep conv_1x1
            out[name] = f"stages.{s}.{rest}"
        return out

    @classmethod
    def upstream_hyper(cls, state_dict: Mapping[str, torch.Tensor]) -> dict:
        """channels, layers, stages of an upstream MS-TCN state_dict (ms-tcn model.py:9-43)."""
        return {"channels": state_dict["stage1.conv_1x1.weight"].shape[0],
                "layers": count_indices(state_dict, r"stage1\.layers\.(\d+)\."),
                "stages": 1 + count_indices(state_dict, r"stages\.(\d+)\.")}
