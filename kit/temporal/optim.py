"""The optimizer and the learning rate: parameter groups, AdamW or Adam, the schedule as a function of the step.

``param_groups`` splits a model's trainable parameters the standard way (as in nanoGPT, timm and
the BERT recipes): weights of linear and convolution layers decay; biases, normalisation weights
(LayerNorm, BatchNorm, GroupNorm, InstanceNorm) and embeddings (``nn.Embedding``, and learned
tables held as bare parameters such as ``PoseGraphEncoder.joint_embed``) do not, since shrinking
them towards 0 only fights the normalisation or the identity of a token or joint.

Example:
    >>> import torch.nn as nn
    >>> from kit.config import RunConfig
    >>> groups = param_groups(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), RunConfig())
    >>> [len(g["params"]) for g in groups], [g["weight_decay"] for g in groups]
    ([1, 3], [0.01, 0.0])
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from kit.config import RunConfig

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._BatchNorm,
         nn.modules.instancenorm._InstanceNorm)
EMBEDDING_NAMES = ("embed", "pos_embed", "cls_token", "mask_token")  # bare parameters that are lookup tables


def no_decay(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    """True for a parameter that takes no weight decay (``name`` is its name inside ``module``)."""
    return (name == "bias" or param.ndim < 2 or isinstance(module, NORMS + (nn.Embedding, nn.EmbeddingBag))
            or any(name == e or name.endswith("_" + e) for e in EMBEDDING_NAMES))


def decay_split(model: nn.Module) -> tuple[list[str], list[str]]:
    """The names of the trainable parameters that decay and of those that do not (each once)."""
    decay, keep, seen = [], [], set()
    for mod_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (keep if no_decay(module, name, p) else decay).append(f"{mod_name}.{name}" if mod_name else name)
    return decay, keep


def param_groups(model: nn.Module, cfg: RunConfig, peak_lr: float | None = None) -> list[dict]:
    """Two optimizer groups of ``model``'s trainable parameters: with ``cfg.weight_decay`` and with 0.

    Each group carries ``peak_lr`` (default ``cfg.lr``; pass ``cfg.backbone_lr`` for a trained
    backbone) for :func:`lr_at`, and ``names`` for logs and tests. Empty groups are left out.
    """
    decay, keep = decay_split(model)
    params = dict(model.named_parameters())
    peak = cfg.lr if peak_lr is None else peak_lr
    groups = [{"params": [params[n] for n in names], "names": names, "weight_decay": wd, "peak_lr": peak}
              for names, wd in ((decay, cfg.weight_decay), (keep, 0.0))]
    return [g for g in groups if g["params"]]


def build_optimizer(cfg: RunConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """``cfg.optimizer``: ``adamw`` (decoupled decay) or ``adam`` (``torch.optim.Adam``, MS-TCN's; decay there
    is an L2 term in the gradient, and the MS-TCN recipe sets it to 0). Betas and eps are PyTorch's defaults,
    as in MS-TCN (``optim.Adam(self.model.parameters(), lr=learning_rate)``)."""
    groups = [{k: v for k, v in g.items() if k != "names"} for g in groups]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer {cfg.optimizer!r} is not one of 'adamw', 'adam'")


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float, schedule: str = "cosine") -> float:
    """The learning rate at ``step`` (0-based): a pure function of the step, so a resumed run continues it.

    Linear warm-up to ``peak`` over ``warmup_steps``, then ``cosine`` decay to 0 at ``total_steps`` or
    ``constant`` at ``peak`` (MS-TCN: no warm-up, constant).
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    if schedule != "cosine":
        raise ValueError(f"lr schedule {schedule!r} is not one of 'cosine', 'constant'")
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
