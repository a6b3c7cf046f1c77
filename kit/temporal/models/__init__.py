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
"""
