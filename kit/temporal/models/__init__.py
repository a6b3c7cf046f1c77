"""Temporal models behind one interface (MS-TCN, MS-TCN++, ASFormer, DiffAct): one file per model.

The interface every model here implements (``B`` batch, ``T`` frames, ``D`` input width,
``ΣK`` all tasks' classes side by side):

- ``Model(in_dim, num_classes, *, multilabel=(), **hyper)``: ``num_classes`` maps each task to its
  class count (its order is the logit order); ``multilabel`` names tasks whose classes are
  independent behaviours (sigmoid per class, see :func:`kit.temporal.models.common.task_probs`).
- ``forward(x, mask) -> list[{task: (B, T, K)}]``: ``x`` (B, T, D), ``mask`` (B, T) bool, True for
  real frames (None: all real). One dict of logits per stage; the last is the prediction. Padded
  frames never change a real frame's output.
- ``training_loss(x, mask, labels, **loss_kw) -> (loss, parts)``: the model's own training
  objective; models trained by their stage outputs use :func:`kit.temporal.model.segmentation_loss`.
  ``loss_kw`` is what the training loop passes: ``smooth_weight``, ``smooth_tau``,
  ``class_weights``, ``task_weights``.
- ``upstream_names(state_dict)``, ``upstream_hyper(state_dict)`` (classmethods): how an upstream
  repository's checkpoint maps onto the model, for :func:`from_upstream`.

``kit.temporal.model.MultiTaskModel`` builds its ``tcn`` with ``build_temporal(cfg.temporal_model,
..., channels=cfg.tcn_channels, layers=cfg.tcn_layers, stages=cfg.tcn_stages, dropout=cfg.dropout,
**cfg.temporal_hyper)``: a model takes those four keywords (with its own meaning) and its own extras.
To add a model: a file here, its class in :data:`TEMPORAL_MODELS`, its name in
``kit.config.TEMPORAL_MODELS``. :class:`kit.temporal.models.common.StagedModel` gives the checks, the
per-task split and the stage-output loss to models that implement ``stage_logits``.
"""
from __future__ import annotations

from typing import Mapping

import torch

from kit.temporal.models.asformer import ASFormer
from kit.temporal.models.common import StagedModel, task_probs  # noqa: F401  (the interface's helpers)
from kit.temporal.models.diffact import DiffAct
from kit.temporal.models.mstcn import TemporalConvNet
from kit.temporal.models.mstcnpp import MSTCNPlusPlus

# name -> class; the names are RunConfig.temporal_model's choices (kit.config.TEMPORAL_MODELS)
TEMPORAL_MODELS: dict[str, type[torch.nn.Module]] = {
    "mstcn": TemporalConvNet,
    "mstcn++": MSTCNPlusPlus,
    "asformer": ASFormer,
    "diffact": DiffAct,
}


def build_temporal(name: str, in_dim: int, num_classes: Mapping[str, int], *, multilabel=(), **hyper):
    """The temporal model ``name`` (a key of :data:`TEMPORAL_MODELS`) for ``in_dim``-wide input.

    Args:
        name: ``mstcn``, ``mstcn++``, ``asformer`` (or another registered model).
        in_dim: input width ``D``; num_classes: {task: K}, in logit order.
        multilabel: tasks whose classes are independent (a sigmoid per class).
        **hyper: the model's own keyword arguments (``channels``, ``layers``, ``stages``, ``dropout``,
            and e.g. ``layers_pg`` for MS-TCN++, ``r1``/``r2``/``channel_masking_rate`` for ASFormer).

    Example:
        >>> m = build_temporal("asformer", 8, {"action": 3}, channels=8, layers=2, stages=2)
        >>> [o["action"].shape for o in m(torch.zeros(1, 5, 8))]
        [torch.Size([1, 5, 3]), torch.Size([1, 5, 3])]
    """
    return _registered(name)(in_dim, dict(num_classes), multilabel=tuple(multilabel), **hyper)


def upstream_hyper(name: str, state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The sizes an upstream ``state_dict`` was trained with, read off its parameter names and shapes.

    ``mstcn``: yabufarha/ms-tcn ``MultiStageModel``; ``mstcn++``: sj-li/MS-TCN2 ``MS_TCN2``;
    ``asformer``: ChinaYi/ASFormer ``MyTransformer``; ``diffact``: Finspire13/DiffAct ``ASDiffusionModel``
    (their ``model.py``). Each model class says how
    (``upstream_hyper``, ``upstream_names``).
    """
    cls = _registered(name)
    try:
        return cls.upstream_hyper(state_dict)
    except KeyError as e:
        raise ValueError(f"this state_dict has no {e}: is it an upstream {name} checkpoint (its model.py's "
                         "state_dict, as its training saves epoch-N.model)?") from None


def _registered(name: str):
    if name not in TEMPORAL_MODELS:
        raise ValueError(f"unknown temporal model {name!r}; registered: {', '.join(TEMPORAL_MODELS)}")
    return TEMPORAL_MODELS[name]


def from_upstream(name: str, state_dict: Mapping[str, torch.Tensor], *, feature_dim: int, num_classes,
                  **hyper) -> torch.nn.Module:
    """The kit's model ``name`` holding an upstream repository's weights, in eval mode.

    Sizes not given in ``hyper`` are read off the state_dict (:func:`upstream_hyper`). With the
    kit's extras off (one task, no pose, no feature projection) its per-stage logits equal
    upstream's for input ``(1, D, T)`` (the kit's input is ``(1, T, D)``).

    Args:
        name: ``mstcn``, ``mstcn++``, ``asformer`` or ``diffact``.
        state_dict: as upstream's training saves it (``torch.load("epoch-N.model")``); a
            ``module.`` prefix (DataParallel) is dropped.
        feature_dim: ``D``; num_classes: the class count (one task, ``action``) or {task: K}.
        **hyper: the model's keyword arguments, overriding what the state_dict says.
    """
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if isinstance(num_classes, int):
        num_classes = {"action": num_classes}
    model = build_temporal(name, feature_dim, num_classes, **{**upstream_hyper(name, sd), **hyper})
    names = type(model).upstream_names(sd)  # MS-TCN's are renamed; MS-TCN++ and ASFormer keep upstream's
    mine = model.state_dict()
    missing = sorted(set(mine) - set(names.values()))
    unexpected = sorted(k for k, v in names.items() if v not in mine)
    wrong = [f"{k} {tuple(sd[k].shape)} (the model has {tuple(mine[v].shape)})" for k, v in names.items()
             if v in mine and sd[k].shape != mine[v].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"upstream {name} state_dict does not fit (feature_dim={feature_dim}, classes="
                         f"{dict(num_classes)}): missing {missing[:5]}, unexpected {unexpected[:5]}, shapes {wrong[:5]}")
    model.load_state_dict({v: sd[k] for k, v in names.items()})  # DiffAct's names leave its schedule buffers out
    return model.eval()
