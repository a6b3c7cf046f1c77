"""DiffAct's building blocks: the noise schedule, the dilated local attention layers, encoder, decoder.

DiffAct (Liu et al., "Diffusion Action Segmentation", ICCV 2023) as in github.com/Finspire13/DiffAct
at commit ``a223e0c`` (2023-08-16); ``model.py:N`` and ``dataset.py:N`` below are lines of those
files there. The layers are ASFormer-like, but each layer's attention looks at the same ``W`` frames
its dilated convolution sees (model.py:380-382, 659-680), so memory grows linearly with ``T``.

Legend: ``B`` batch, ``T`` frames, ``D`` input width, ``C`` channels of a layer stack, ``X`` the
encoder features the decoder is conditioned on, ``ΣK`` all tasks' classes, ``W`` keys per query
(the kernel size), ``E`` time-embedding width.

Padding: every layer takes ``m`` (B, 1, T), 1.0 for real frames. Padded frames act exactly like the
frames beyond a video's end in upstream (zero conv input, keys masked out of the attention), and the
instance norm averages over real frames only, so a real frame's output never depends on padding.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def cosine_alphas_cumprod(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """``ᾱ_t`` of the cosine schedule (Nichol & Dhariwal 2021), float64 as upstream (model.py:46-56, 76-78).

    Shapes:
        returns: (timesteps,) float64.
    """
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    f = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    f = f / f[0]
    betas = torch.clip(1 - (f[1:] / f[:-1]), 0, 0.999)
    return torch.cumprod(1.0 - betas, dim=0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps: sines then cosines (model.py:15-35).

    Shapes:
        t: (B,) long; returns (B, dim) float32.
    """
    if t.dim() != 1:
        raise ValueError(f"timestep_embedding expected t of shape (B,), got {tuple(t.shape)}")
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * -(math.log(10000) / (half - 1)))
    emb = t.float()[:, None] * freq[None, :]  # (B, half)
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    return F.pad(emb, (0, 1, 0, 0)) if dim % 2 == 1 else emb


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)  # model.py:37-38


def masked_instance_norm(x: torch.Tensor, m: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``nn.InstanceNorm1d(affine=False)`` over the real frames only (biased variance, as PyTorch).

    Shapes:
        x: (B, C, T); m: (B, 1, T) float, 1 for real frames; returns (B, C, T), 0 at padded frames.
    """
    n = m.sum(-1, keepdim=True).clamp_min(1.0)  # (B, 1, 1)
    mean = (x * m).sum(-1, keepdim=True) / n  # (B, C, 1)
    var = ((x - mean).pow(2) * m).sum(-1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + eps) * m


def _windows(x: torch.Tensor, pad: int, dilation: int) -> torch.Tensor:
    """Every frame's ``W`` neighbours ``t - pad, t - pad + dilation, ..., t + pad``; zeros outside ``[0, T)``.

    ``W`` shifted slices of the zero-padded input, stacked (upstream gathers an explicit (T, W)
    index table, model.py:659-680, 697-705): memory O(B C T W), also for the gradient. (A strided
    ``unfold`` view would be free forward, but its backward allocates the whole ``2 pad + 1`` window,
    (B, C, T, 1025) at dilation 512.)

    Shapes:
        x: (B, C, T); returns (B, C, T, W).
    """
    T = x.shape[-1]
    xp = F.pad(x, (pad, pad))  # (B, C, T + 2 pad)
    return torch.stack([xp[..., j:j + T] for j in range(0, 2 * pad + 1, dilation)], -1)  # (B, C, T, W)


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: torch.Tensor,
                    kernel_size: int, dilation: int) -> torch.Tensor:
    """Dilated local attention of DiffAct (model.py:683-721).

    Each frame attends to the ``kernel_size`` frames its dilated convolution sees. Scores are
    ``q·k / sqrt(C)``; a key outside the video (or padded) gets ``+ log(1e-6)`` before the softmax
    and its weight is then set to 0 without renormalising, exactly as upstream (model.py:709-717),
    so with such keys a row's weights sum to slightly under 1.

    Shapes:
        q, k, v: (B, C, T); m: (B, 1, T) float, 1 for real frames; returns (B, C, T).
    """
    B, C, T = q.shape
    pad = (kernel_size // 2) * dilation
    kw = _windows(k * m, pad, dilation)  # (B, C, T, W): padded keys are 0, like upstream's F.pad zeros
    vw = _windows(v, pad, dilation)  # (B, C, T, W)
    valid = _windows(m, pad, dilation)[:, 0]  # (B, T, W): 1 where the key is a real frame
    att = torch.einsum("bct,bctw->btw", q, kw)  # (B, T, W)
    att = att / math.sqrt(C)
    att = att + torch.log(valid + 1e-6)
    att = F.softmax(att, 2) * valid
    return torch.einsum("btw,bctw->bct", att, vw)  # (B, C, T)


class MixedLayer(nn.Module):
    """One encoder or decoder layer: ``x + FFN(norm(conv(x) + attention(x)))`` (model.py:626-731, 479-588).

    With ``cross_dim > 0`` (the decoder's layer) queries and keys also see the encoder features
    ``c`` (model.py:497-498, 547-549); values come from ``x`` alone.

    Shapes:
        x: (B, C, T); c: (B, X, T) or None; m: (B, 1, T); returns (B, C, T), 0 at padded frames.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float, cross_dim: int = 0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"DiffAct needs an odd kernel_size (model.py:491), got {kernel_size}")
        self.kernel_size, self.dilation, self.cross_dim = kernel_size, dilation, cross_dim
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size // 2) * dilation, dilation=dilation)
        self.query = nn.Conv1d(channels + cross_dim, channels, 1)
        self.key = nn.Conv1d(channels + cross_dim, channels, 1)
        self.value = nn.Conv1d(channels, channels, 1)
        self.ffn_in = nn.Conv1d(channels, channels, 1)
        self.ffn_out = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, m: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        xd = self.dropout(x) * m  # zero input at padded frames, as upstream's zero padding past the end
        qk_in = xd if c is None else torch.cat([xd, self.dropout(c) * m], 1)  # (B, C [+ X], T)
        att = local_attention(self.query(qk_in), self.key(qk_in), self.value(xd), m, self.kernel_size, self.dilation)
        h = masked_instance_norm(self.conv(xd) + att, m)
        return (x + self.ffn_out(F.relu(self.ffn_in(h)))) * m


class Encoder(nn.Module):
    """DiffAct's encoder (model.py:385-421): channel and frame dropout, 1x1 in, layers of dilation 2**i, 1x1 out.

    ``feature_layers`` picks what the decoder is conditioned on (model.py:124-128, 403-416):
    indices of layers whose outputs are concatenated, ``-1`` for the input features and ``-2``
    for the encoder's own per-task probabilities.

    Shapes:
        x: (B, D, T); m: (B, 1, T); returns logits (B, ΣK, T) and features (B, X, T) (None
        when ``features=False``).
    """

    def __init__(self, in_dim: int, out_dim: int, channels: int, layers: int, kernel_size: int, dropout: float,
                 channel_dropout: float, temporal_dropout: float, feature_layers=()):
        super().__init__()
        self.feature_layers = tuple(feature_layers)
        self.channel_dropout = nn.Dropout2d(channel_dropout)  # model.py:394, 408: whole input channels
        self.temporal_dropout = nn.Dropout2d(temporal_dropout)  # model.py:395, 409: whole frames
        self.conv_in = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(MixedLayer(channels, kernel_size, 2 ** i, dropout) for i in range(layers))
        self.conv_out = nn.Conv1d(channels, out_dim, 1)

    def forward(self, x: torch.Tensor, m: torch.Tensor, probs=None, features: bool = True):
        feats = [x] if features and -1 in self.feature_layers else []
        x = self.channel_dropout(x.unsqueeze(3)).squeeze(3)  # (B, D, T, 1): Dropout2d zeroes channels
        x = self.temporal_dropout(x.unsqueeze(3).transpose(1, 2)).squeeze(3).transpose(1, 2)  # (B, T, D, 1): frames
        h = self.conv_in(x) * m  # (B, C, T)
        for i, layer in enumerate(self.layers):
            h = layer(h, m)
            if features and i in self.feature_layers:
                feats.append(h)
        out = self.conv_out(h) * m  # (B, ΣK, T)
        if features and -2 in self.feature_layers:
            feats.append(probs(out) * m)
        return out, (torch.cat(feats, 1) if features else None)


class Decoder(nn.Module):
    """DiffAct's denoiser (model.py:425-476): the noisy per-frame class probabilities plus the step's
    embedding, through layers whose attention also sees the encoder features, to clean logits.

    Shapes:
        c: (B, X, T) encoder features; t: (B,) long steps; event: (B, ΣK, T) in [0, 1];
        m: (B, 1, T); returns (B, ΣK, T) logits.
    """

    def __init__(self, num_classes: int, cross_dim: int, channels: int, layers: int, kernel_size: int,
                 dropout: float, time_dim: int):
        super().__init__()
        self.time_dim = time_dim
        self.time_embed = nn.ModuleList([nn.Linear(time_dim, time_dim), nn.Linear(time_dim, time_dim)])
        self.conv_in = nn.Conv1d(num_classes, channels, 1)
        self.time_proj = nn.Linear(time_dim, channels)
        self.layers = nn.ModuleList(MixedLayer(channels, kernel_size, 2 ** i, dropout, cross_dim)
                                    for i in range(layers))
        self.conv_out = nn.Conv1d(channels, num_classes, 1)

    def forward(self, c: torch.Tensor, t: torch.Tensor, event: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed[1](swish(self.time_embed[0](timestep_embedding(t, self.time_dim))))  # (B, E)
        h = (self.conv_in(event) + self.time_proj(swish(emb))[:, :, None]) * m  # (B, C, T)
        for layer in self.layers:
            h = layer(h, m, c)
        return self.conv_out(h) * m  # (B, ΣK, T)
