"""MS-TCN++ (Li, Farha, Liu, Cheng & Gall, TPAMI 2020): a dual-dilated prediction generator, then refinements.

Legend: ``B`` batch, ``T`` frames, ``D`` input width, ``C`` channels (upstream ``num_f_maps``),
``ΣK`` all tasks' classes side by side.

Written from github.com/sj-li/MS-TCN2 ``model.py`` at commit f423a9e (2020-11-22); ``file:line``
below are lines of that file. Module names are upstream's (``PG``, ``Rs``, ``conv_dilated_1``, ...),
so an upstream ``state_dict`` loads as it is (:func:`kit.temporal.models.from_upstream`).

```
x (B, D, T) -> PG: conv_1x1_in; L_pg x [ f + dropout(relu(fusion(cat(dil_{2^(L-1-i)}(f), dil_{2^i}(f))))) ]
            -> conv_out -> logits_1
            -> R_1 .. R_n: MS-TCN stage on per-task softmax(logits_{s-1}) -> logits_{s+1}
```
The kit adds the padding mask after every layer (upstream trains one video per batch, with no mask
in the model, model.py:19-26): with one unpadded video the result is upstream's.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from kit.temporal.models.common import StagedModel, count_indices


class PredictionGeneration(nn.Module):
    """Upstream ``Prediction_Generation`` (model.py:28-68): two dilated convs per layer, fused by a 1x1 conv."""

    def __init__(self, layers: int, channels: int, in_dim: int, out_dim: int, dropout: float):
        super().__init__()
        self.num_layers = layers
        self.conv_1x1_in = nn.Conv1d(in_dim, channels, 1)
        # model.py:36-38: dilation falls 2**(L-1-i) ... 1; model.py:41-43: it rises 1 ... 2**(L-1)
        self.conv_dilated_1 = nn.ModuleList(
            nn.Conv1d(channels, channels, 3, padding=2 ** (layers - 1 - i), dilation=2 ** (layers - 1 - i))
            for i in range(layers))
        self.conv_dilated_2 = nn.ModuleList(
            nn.Conv1d(channels, channels, 3, padding=2 ** i, dilation=2 ** i) for i in range(layers))
        self.conv_fusion = nn.ModuleList(nn.Conv1d(2 * channels, channels, 1) for _ in range(layers))  # model.py:46-50
        self.dropout = nn.Dropout(dropout)  # model.py:53 nn.Dropout(): p = 0.5, one module shared by the layers
        self.conv_out = nn.Conv1d(channels, out_dim, 1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Shapes: x (B, D, T); m (B, 1, T); returns (B, ΣK, T)."""
        f = self.conv_1x1_in(x) * m  # (B, C, T)
        for i in range(self.num_layers):  # model.py:59-64
            fused = self.conv_fusion[i](torch.cat([self.conv_dilated_1[i](f), self.conv_dilated_2[i](f)], 1))
            f = (self.dropout(F.relu(fused)) + f) * m  # (B, C, T)
        return self.conv_out(f) * m


class DilatedResidualLayer(nn.Module):
    """Upstream ``DilatedResidualLayer`` (model.py:114-126): MS-TCN's layer."""

    def __init__(self, dilation: int, channels: int, dropout: float):
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)  # model.py:119 nn.Dropout(): p = 0.5

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return (x + self.dropout(self.conv_1x1(F.relu(self.conv_dilated(x))))) * m


class Refinement(nn.Module):
    """Upstream ``Refinement`` (model.py:70-82): an MS-TCN stage with dilations 1 ... 2**(L-1)."""

    def __init__(self, layers: int, channels: int, in_dim: int, out_dim: int, dropout: float):
        super().__init__()
        self.conv_1x1 = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(DilatedResidualLayer(2 ** i, channels, dropout) for i in range(layers))
        self.conv_out = nn.Conv1d(channels, out_dim, 1)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Shapes: x (B, ΣK, T); m (B, 1, T); returns (B, ΣK, T)."""
        h = self.conv_1x1(x) * m  # (B, C, T)
        for layer in self.layers:
            h = layer(h, m)
        return self.conv_out(h) * m


class MSTCNPlusPlus(StagedModel):
    """MS-TCN++ with one output block per task.

    Args:
        in_dim: input width ``D``; num_classes: {task: K}.
        channels: upstream ``num_f_maps`` (64). layers: upstream ``num_layers_R`` (10), layers of
        each refinement stage. stages: 1 + upstream ``num_R`` (3 refinements: 4).
        dropout: upstream ``nn.Dropout()`` (0.5). layers_pg: upstream ``num_layers_PG`` (11);
        0 = ``layers``. multilabel: tasks with a sigmoid per class between stages.

    Shapes:
        x: (B, T, D); mask: (B, T) bool, True for real frames (None = all real).
        returns: list over stages of {task: (B, T, K_task)} logits.
    """

    name = "mstcn++"

    def __init__(self, in_dim: int, num_classes: Mapping[str, int], channels: int = 64, layers: int = 10,
                 stages: int = 4, dropout: float = 0.5, *, layers_pg: int = 0, multilabel=()):
        super().__init__(in_dim, num_classes, multilabel)
        if min(channels, layers, stages, layers_pg if layers_pg else 1) < 1:
            raise ValueError(f"MS-TCN++ needs channels, layers, stages >= 1 and layers_pg >= 0, got "
                             f"{channels}, {layers}, {stages}, {layers_pg}")
        self.PG = PredictionGeneration(layers_pg or layers, channels, in_dim, self.total, dropout)
        self.Rs = nn.ModuleList(Refinement(layers, channels, self.total, self.total, dropout)
                                for _ in range(stages - 1))

    def stage_logits(self, x: torch.Tensor, m: torch.Tensor) -> list[torch.Tensor]:
        out = self.PG(x, m)  # (B, ΣK, T)
        outputs = [out]
        for R in self.Rs:
            out = R(self.probs(out, m), m)  # model.py:22 R(F.softmax(out, dim=1)), per task here
            outputs.append(out)
        return outputs

    @classmethod
    def upstream_hyper(cls, state_dict) -> dict:
        """Sizes of an upstream ``MS_TCN2`` state_dict; its names are the kit's (model.py:13-82)."""
        pg = count_indices(state_dict, r"PG\.conv_fusion\.(\d+)\.")
        return {"channels": state_dict["PG.conv_1x1_in.weight"].shape[0], "layers_pg": pg,
                "layers": count_indices(state_dict, r"Rs\.0\.layers\.(\d+)\.") or pg,
                "stages": 1 + count_indices(state_dict, r"Rs\.(\d+)\.")}
