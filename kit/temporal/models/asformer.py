"""ASFormer (Yi, Wen & Jiang, BMVC 2021): an encoder of local attention blocks, decoders that refine.

Legend: ``B`` batch, ``T`` frames, ``D`` input width, ``C`` channels (upstream ``num_f_maps``),
``bl`` an attention block (= the layer's dilation), ``nb`` blocks, ``W = bl + 2 (bl // 2)`` keys
per block, ``ΣK`` all tasks' classes side by side.

Written from github.com/ChinaYi/ASFormer ``model.py`` at commit e1bbe4f (2022-02-19); ``file:line``
below are lines of that file. Module names are upstream's (``encoder``, ``decoders``, ``att_layer``,
``feed_forward.layer.0``, ...), so an upstream ``state_dict`` loads as it is.

```
x (B, D, T) -> channel masking (Dropout2d) -> Encoder: conv_1x1; L x AttModule(dilation 2^i, alpha 1)
            -> conv_out -> logits_1, feature
  Decoder s (s = 0..S-1, alpha = exp(-3 s)): conv_1x1(softmax(logits)); L x AttModule with
            query/key from its own stream, value from the previous feature -> logits, feature
AttModule(x, f): out = relu(dilated conv(x)); out = alpha * att(instnorm(out), f) + out;
                 x + dropout(conv_1x1(out))
```
Memory: attention is upstream's sliding window (model.py:132-170): the frames are cut into ``nb``
blocks of ``bl`` queries, each attending to keys of the ``W`` frames around its block (which of them:
:func:`window_mask`, as released or ``fixed_window``), so a layer holds ``(B nb, bl, W)``
scores, about ``2 T bl`` numbers, never ``T x T``: a 20,000-frame video fits (``bl`` is at most
``2**(layers-1)`` = 512 with 10 layers).

Where the kit differs (none of it changes a single unpadded video's output): batches of several
padded videos (upstream asserts batch 1, model.py:138), the padding mask after each input 1x1 conv,
keys of padded frames set to 0 (as upstream's own zero blocks past the end), and the instance norm
over real frames only, so padded frames never change a real frame's output.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from kit.temporal.models.common import StagedModel, count_indices


def exponential_decrease(idx_decoder: int, p: float = 3.0) -> float:
    """Decoder ``s``'s attention weight ``alpha = exp(-p s)`` (model.py:14-15)."""
    return math.exp(-p * idx_decoder)


def window_mask(bl: int, device=None, dtype=torch.float32, fixed: bool = False) -> torch.Tensor:
    """Which of a block's ``W`` keys each of its ``bl`` queries sees. ``(1, bl, W)``

    As released (model.py:70-72, ``window_mask[:, :, i:i+bl] = 1`` for every ``i``), every query of
    a block sees keys ``0 .. 2 bl - 2`` of its window: the block and about ``bl / 2`` frames either
    side. The authors' README calls it a small error kept so that their released checkpoints load
    (ASFormer issue #2); ``fixed=True`` is their correction (``window_mask[:, i, i:i+bl] = 1``): query
    ``i`` sees keys ``i .. i+bl-1``, a window of ``bl`` centred on it.
    """
    i = torch.arange(bl, device=device)[:, None]  # (bl, 1)
    j = torch.arange(bl + 2 * (bl // 2), device=device)[None, :]  # (1, W)
    seen = (j >= i) & (j < i + bl) if fixed else (j < 2 * bl - 1).expand(bl, -1)
    return seen.to(dtype)[None]


def masked_instance_norm(x: torch.Tensor, m: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``nn.InstanceNorm1d(C)`` (no affine, biased variance, eps 1e-5; model.py:218) over real frames only.

    Computed in float32 (under fp16 autocast a variance near eps would lose its digits).

    Shapes: x (B, C, T); m (B, 1, T) float; returns (B, C, T) in x's dtype.
    """
    xf, mf = x.float(), m.float()
    n = mf.sum(-1, keepdim=True).clamp_min(1)  # (B, 1, 1)
    mean = (xf * mf).sum(-1, keepdim=True) / n  # (B, C, 1)
    var = ((xf - mean).pow(2) * mf).sum(-1, keepdim=True) / n
    return ((xf - mean) * torch.rsqrt(var + eps)).to(x.dtype)


class AttLayer(nn.Module):
    """Upstream ``AttLayer`` with ``att_type='sliding_att'`` (model.py:46-170), the one ASFormer uses.

    Queries and keys come from ``x1``; values from ``x1`` in the encoder, from ``x2`` (the previous
    stage's feature) in a decoder (model.py:75-88).
    """

    def __init__(self, q_dim: int, k_dim: int, v_dim: int, r1: int, r2: int, r3: int, bl: int, stage: str,
                 fixed_window: bool = False):
        super().__init__()
        if stage not in ("encoder", "decoder"):
            raise ValueError(f"stage must be 'encoder' or 'decoder', got {stage!r}")
        self.query_conv = nn.Conv1d(q_dim, q_dim // r1, 1)
        self.key_conv = nn.Conv1d(k_dim, k_dim // r2, 1)
        self.value_conv = nn.Conv1d(v_dim, v_dim // r3, 1)
        self.conv_out = nn.Conv1d(v_dim // r3, v_dim, 1)
        self.bl, self.stage, self.fixed_window = bl, stage, fixed_window

    def forward(self, x1: torch.Tensor, x2: torch.Tensor | None, m: torch.Tensor) -> torch.Tensor:
        """Shapes: x1, x2 (B, C, T); m (B, 1, T) float; returns (B, C, T), zero on padded frames."""
        q = self.query_conv(x1)  # (B, C/r1, T)
        k = self.key_conv(x1) * m  # a padded frame's key is 0, like upstream's zero blocks (model.py:143-146)
        if self.stage == "decoder":
            if x2 is None:
                raise ValueError("a decoder's attention needs the previous stage's feature x2")
            v = self.value_conv(x2)
        else:
            v = self.value_conv(x1)
        return self._sliding_window(q, k, v * m, m)

    def _sliding_window(self, q, k, v, m):
        """model.py:132-170, batched: blocks of ``bl`` queries, each against ``W`` keys around it."""
        B, c1, T = q.shape
        bl = self.bl
        nb = -(-T // bl)  # blocks, the last one zero-padded (model.py:140-146)
        pad = nb * bl - T
        q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))  # (B, c, nb bl)
        pm = F.pad(m, (0, pad))  # (B, 1, nb bl)
        q = q.reshape(B, c1, nb, bl).permute(0, 2, 1, 3).reshape(B * nb, c1, bl)  # (B nb, c1, bl)
        half = bl // 2
        W = bl + 2 * half

        def windows(t: torch.Tensor) -> torch.Tensor:  # (B, c, nb bl) -> (B nb, c, W), model.py:153-160
            t = F.pad(t, (half, half)).unfold(-1, W, bl)  # (B, c, nb, W)
            return t.permute(0, 2, 1, 3).reshape(B * nb, t.shape[1], W)

        k, v, pm = windows(k), windows(v), windows(pm)  # (B nb, c, W); pm (B nb, 1, W)
        final = window_mask(bl, pm.device, pm.dtype, self.fixed_window) * pm  # (B nb, bl, W), model.py:163
        # scalar_dot_att (model.py:23-44): scores / sqrt(c), + log(mask + 1e-6), softmax, times the mask
        energy = torch.bmm(q.transpose(1, 2), k) / math.sqrt(c1)  # (B nb, bl, W)
        att = torch.softmax(energy + torch.log(final + 1e-6), -1) * final
        out = torch.bmm(v, att.transpose(1, 2))  # (B nb, c3, bl)
        out = self.conv_out(F.relu(out))  # (B nb, C, bl)
        out = out.reshape(B, nb, -1, bl).permute(0, 2, 1, 3).reshape(B, -1, nb * bl)  # (B, C, nb bl)
        return out[:, :, :T] * m


class ConvFeedForward(nn.Module):
    """Upstream ``ConvFeedForward`` (model.py:188-197): dilated conv (kernel 3) and ReLU."""

    def __init__(self, dilation: int, in_channels: int, out_channels: int):
        super().__init__()
        self.layer = nn.Sequential(nn.Conv1d(in_channels, out_channels, 3, padding=dilation, dilation=dilation),
                                   nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class AttModule(nn.Module):
    """Upstream ``AttModule`` (model.py:214-229)."""

    def __init__(self, dilation: int, channels: int, r1: int, r2: int, stage: str, alpha: float, dropout: float,
                 fixed_window: bool = False):
        super().__init__()
        self.feed_forward = ConvFeedForward(dilation, channels, channels)
        self.att_layer = AttLayer(channels, channels, channels, r1, r1, r2, dilation, stage, fixed_window)  # model.py:219
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)  # model.py:221 nn.Dropout(): p = 0.5
        self.alpha = alpha

    def forward(self, x: torch.Tensor, f: torch.Tensor | None, m: torch.Tensor) -> torch.Tensor:
        """Shapes: x, f (B, C, T); m (B, 1, T); returns (B, C, T)."""
        out = self.feed_forward(x)
        out = self.alpha * self.att_layer(masked_instance_norm(out, m), f, m) + out  # model.py:226
        out = self.dropout(self.conv_1x1(out))
        return (x + out) * m


class Encoder(nn.Module):
    """Upstream ``Encoder`` (model.py:251-281)."""

    def __init__(self, layers: int, r1: int, r2: int, channels: int, in_dim: int, out_dim: int,
                 channel_masking_rate: float, dropout: float, fixed_window: bool = False):
        super().__init__()
        self.conv_1x1 = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(AttModule(2 ** i, channels, r1, r2, "encoder", 1.0, dropout, fixed_window)
                                    for i in range(layers))
        self.conv_out = nn.Conv1d(channels, out_dim, 1)
        self.dropout = nn.Dropout2d(p=channel_masking_rate)  # drops whole input channels (model.py:260, 270-273)
        self.channel_masking_rate = channel_masking_rate

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes: x (B, D, T); m (B, 1, T); returns logits (B, ΣK, T), feature (B, C, T)."""
        if self.channel_masking_rate > 0:
            x = self.dropout(x.unsqueeze(2)).squeeze(2)  # (B, D, 1, T): a channel is one "feature map"
        feature = self.conv_1x1(x) * m
        for layer in self.layers:
            feature = layer(feature, None, m)
        return self.conv_out(feature) * m, feature


class Decoder(nn.Module):
    """Upstream ``Decoder`` (model.py:284-300)."""

    def __init__(self, layers: int, r1: int, r2: int, channels: int, in_dim: int, out_dim: int, alpha: float,
                 dropout: float, fixed_window: bool = False):
        super().__init__()
        self.conv_1x1 = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(AttModule(2 ** i, channels, r1, r2, "decoder", alpha, dropout, fixed_window)
                                    for i in range(layers))
        self.conv_out = nn.Conv1d(channels, out_dim, 1)

    def forward(self, x: torch.Tensor, fencoder: torch.Tensor, m: torch.Tensor):
        """Shapes: x (B, ΣK, T) probabilities; fencoder (B, C, T); returns logits (B, ΣK, T), feature."""
        feature = self.conv_1x1(x) * m
        for layer in self.layers:
            feature = layer(feature, fencoder, m)
        return self.conv_out(feature) * m, feature


class ASFormer(StagedModel):
    """ASFormer (upstream ``MyTransformer``, model.py:303-318) with one output block per task.

    Args:
        in_dim: input width ``D``; num_classes: {task: K}.
        channels: upstream ``num_f_maps`` (64, main.py:33). layers: ``num_layers`` (10, main.py:32),
        AttModules per encoder and decoder. stages: 1 + decoders (3 decoders, model.py:323: 4).
        dropout: the AttModules' ``nn.Dropout()`` (0.5). r1, r2: channel reductions of query/key
        and of value (2 and 2, main.py:84). channel_masking_rate: Dropout2d on the input
        features (0.3, main.py:37; 0.5 on GTEA, main.py:48-49). fixed_window: the authors' corrected
        attention window (see :func:`window_mask`); False = the code as released, which their
        checkpoints and published numbers come from. multilabel: tasks with a sigmoid per class
        between stages.

    Shapes:
        x: (B, T, D); mask: (B, T) bool, True for real frames (None = all real).
        returns: list over stages of {task: (B, T, K_task)} logits.
    """

    name = "asformer"

    def __init__(self, in_dim: int, num_classes: Mapping[str, int], channels: int = 64, layers: int = 10,
                 stages: int = 4, dropout: float = 0.5, *, r1: int = 2, r2: int = 2,
                 channel_masking_rate: float = 0.3, fixed_window: bool = False, multilabel=()):
        super().__init__(in_dim, num_classes, multilabel)
        if min(channels, layers, stages, r1, r2) < 1 or not 0 <= channel_masking_rate < 1:
            raise ValueError(f"ASFormer needs channels, layers, stages, r1, r2 >= 1 and 0 <= channel_masking_rate "
                             f"< 1, got {channels}, {layers}, {stages}, {r1}, {r2}, {channel_masking_rate}")
        if channels // r1 < 1 or channels // r2 < 1:
            raise ValueError(f"ASFormer: channels {channels} // r1 {r1} or // r2 {r2} is 0")
        self.encoder = Encoder(layers, r1, r2, channels, in_dim, self.total, channel_masking_rate, dropout,
                               fixed_window)
        self.decoders = nn.ModuleList(  # model.py:307
            Decoder(layers, r1, r2, channels, self.total, self.total, exponential_decrease(s), dropout, fixed_window)
            for s in range(stages - 1))

    def stage_logits(self, x: torch.Tensor, m: torch.Tensor) -> list[torch.Tensor]:
        out, feature = self.encoder(x, m)  # (B, ΣK, T), (B, C, T)
        outputs = [out]
        for decoder in self.decoders:  # model.py:313-316: softmax(out) * mask, feature * mask
            out, feature = decoder(self.probs(out, m), feature * m, m)
            outputs.append(out)
        return outputs

    @classmethod
    def upstream_hyper(cls, state_dict) -> dict:
        """Sizes of an upstream ``MyTransformer`` state_dict; its names are the kit's (model.py:214-318).
        Not in the weights: ``channel_masking_rate`` (training only) and ``fixed_window``."""
        C = state_dict["encoder.conv_1x1.weight"].shape[0]
        att = "encoder.layers.0.att_layer."
        return {"channels": C, "layers": count_indices(state_dict, r"encoder\.layers\.(\d+)\."),
                "stages": 1 + count_indices(state_dict, r"decoders\.(\d+)\."),
                "r1": C // state_dict[att + "query_conv.weight"].shape[0],
                "r2": C // state_dict[att + "value_conv.weight"].shape[0]}
