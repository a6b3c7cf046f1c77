"""Per-frame models: a pose graph encoder, a multi-stage temporal conv net, and the task heads.

Legend: ``B`` batch, ``T`` frames in the window, ``J`` joints, ``F`` per-joint input features,
``D`` width (``Dv`` visual, ``Dp`` pose, ``C`` TCN channels), ``K`` classes of one task
(``ΣK`` all tasks' classes side by side).

```
visual (B, T, Dv) -> LayerNorm -> Linear -> Dropout -> (B, T, C)  --+
pose (B, T, J, 3) -> PoseGraphEncoder -------------> (B, T, Dp) --+-- concat -> TemporalConvNet
                                                                         -> [stage]{task: (B, T, K)}
```
The TCN follows MS-TCN (Farha & Gall, CVPR 2019): stages of dilated residual ``Conv1d`` layers,
each later stage refining the softmax of the one before, everything multiplied by the padding
mask after each layer so that padded frames stay zero and never leak into real ones.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from kit.config import RunConfig
from kit.data import COCO17_EDGES  # noqa: F401  (re-exported: the default skeleton)
from kit.temporal.losses import _focal_ce, _multilabel_loss  # rare classes, overlapping behaviours
from kit.temporal.models.common import task_probs

IGNORE_INDEX = -100  # same value as kit.data.IGNORE_INDEX and torch's cross-entropy default

NODE_FEATURES = 5  # per joint: normalised x, y; velocity dx, dy; valid flag


def normalized_adjacency(num_joints: int, edges: Sequence[tuple[int, int]]) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` of an undirected skeleton (Kipf & Welling 2017). ``(J, J)``"""
    A = torch.eye(num_joints)
    for i, j in edges:
        if not (0 <= i < num_joints and 0 <= j < num_joints):
            raise ValueError(f"edge ({i}, {j}) names a joint outside 0..{num_joints - 1}; "
                             f"fix `edges` or `num_joints`")
        A[i, j] = A[j, i] = 1.0
    d = A.sum(1).rsqrt()
    return d[:, None] * A * d[None, :]


def pose_features(keypoints: torch.Tensor, motion_gain: float = 10.0):
    """Per-frame normalised joints, their motion, and the skeleton's own motion.

    A joint is valid when x and y are finite and its score is > 0; invalid joints are zeroed
    (no NaN reaches the network). Each frame is centred on the mean of its valid joints and
    scaled by the largest distance of a valid joint from that centre (1 when that is ~0).
    Centring removes the translation, so the centre's frame-to-frame displacement (in body
    sizes) is returned as well: without it walking left and walking right look the same.
    Motion terms are 0 at the first frame and wherever the previous frame is missing.

    Shapes:
        keypoints: (B, T, J, 3) x, y, score.
        returns: nodes (B, T, J, F=5), shift (B, T, 2), valid (B, T, J) bool.
    """
    xy, score = keypoints[..., :2], keypoints[..., 2]
    valid = torch.isfinite(xy).all(-1) & (score > 0)  # NaN score compares False
    v = valid[..., None].to(xy.dtype)  # (B, T, J, 1)
    xy = torch.where(valid[..., None], xy, torch.zeros_like(xy))
    count = v.sum(2)  # (B, T, 1)
    centre = xy.sum(2) / count.clamp_min(1)  # (B, T, 2)
    rel = (xy - centre[:, :, None]) * v  # (B, T, J, 2)
    size = rel.norm(dim=-1).amax(2)  # (B, T)
    scale = torch.where(size > 1e-6, size, torch.ones_like(size))
    norm = rel / scale[..., None, None]

    def previous(x: torch.Tensor) -> torch.Tensor:  # x[t-1] along T, x[0] at t = 0
        return torch.cat([x[:, :1], x[:, :-1]], 1)

    first = torch.zeros_like(valid[:, :1])
    both = valid & torch.cat([first, valid[:, :-1]], 1)  # (B, T, J)
    velocity = (norm - previous(norm)) * both[..., None] * motion_gain
    present = count[..., 0] > 0  # (B, T)
    moved = present & torch.cat([first[..., 0], present[:, :-1]], 1)
    shift = (centre - previous(centre)) / scale[..., None] * moved[..., None] * motion_gain
    nodes = torch.cat([norm, velocity, v], -1)  # (B, T, J, 5)
    return nodes, shift, valid


class PoseGraphEncoder(nn.Module):
    """Graph convolution over the skeleton of every frame, pooled to one vector per frame.

    Node features come from :func:`pose_features`; a learned per-joint embedding tells joints
    apart (the graph weights are shared). ``layers`` residual GCN layers
    ``h + ReLU(LayerNorm(Â (h W)))`` with invalid joints zeroed before and after each, then the
    mean and max over valid joints plus the skeleton's displacement go through a linear to
    ``out_dim``. Frames with no valid joint give zeros, like a missing pose.

    Joint layout: ``edges=None`` means :data:`COCO17_EDGES` when ``num_joints == 17``. For any
    other joint count ``edges=None`` assumes **no skeleton**: the adjacency is the identity, so
    each joint is encoded on its own and joints meet only in the pooling (no made-up topology).
    Pass ``edges`` (pairs of 0-based joint indices) to convolve over your own skeleton.

    Shapes:
        keypoints: (B, T, J, 3) x, y, score; NaN or score <= 0 marks a missing joint.
        returns: (B, T, out_dim)
    """

    def __init__(self, num_joints: int = 17, out_dim: int = 64, edges=None, hidden: int = 64,
                 layers: int = 3, motion_gain: float = 10.0):
        super().__init__()
        if edges is None:
            edges = COCO17_EDGES if num_joints == 17 else ()
        self.num_joints, self.out_dim, self.motion_gain = num_joints, out_dim, motion_gain
        self.register_buffer("adj", normalized_adjacency(num_joints, edges), persistent=False)
        self.inp = nn.Linear(NODE_FEATURES, hidden)
        self.joint_embed = nn.Parameter(torch.randn(num_joints, hidden) * 0.02)
        self.gcn = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.out = nn.Linear(2 * hidden + 2, out_dim)

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        if keypoints.dim() != 4 or keypoints.shape[2:] != (self.num_joints, 3):
            raise ValueError(f"PoseGraphEncoder expected keypoints (B, T, {self.num_joints}, 3), "
                             f"got {tuple(keypoints.shape)}")
        nodes, shift, valid = pose_features(keypoints.float(), self.motion_gain)
        v = valid[..., None].to(nodes.dtype)  # (B, T, J, 1)
        h = (self.inp(nodes) + self.joint_embed) * v  # (B, T, J, H)
        for lin, norm in zip(self.gcn, self.norms):
            msg = torch.einsum("ij,btjh->btih", self.adj, lin(h) * v)  # (B, T, J, H)
            h = (h + F.relu(norm(msg))) * v
        present = valid.any(2, keepdim=True)  # (B, T, 1)
        mean = h.sum(2) / v.sum(2).clamp_min(1)  # (B, T, H)
        peak = h.masked_fill(~valid[..., None], float("-inf")).amax(2)  # (B, T, H)
        peak = torch.where(present, peak, torch.zeros_like(peak))
        return self.out(torch.cat([mean, peak, shift], -1)) * present  # (B, T, Dp)


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


class TemporalConvNet(nn.Module):
    """Multi-stage TCN (MS-TCN, Farha & Gall 2019) with one output block per task.

    Stage 1 maps the features to every task's logits (concatenated along channels); stage
    ``s > 1`` takes the per-task softmax of stage ``s - 1`` and refines it. All layers are
    multiplied by the mask, so real frames never see padded inputs and padded outputs are 0.

    Shapes:
        x: (B, T, D); mask: (B, T) bool, True for real frames (None = all real).
        returns: list over stages of {task: (B, T, K_task)} logits.
    """

    def __init__(self, in_dim: int, num_classes: Mapping[str, int], channels: int = 64,
                 layers: int = 8, stages: int = 2, dropout: float = 0.3, multilabel: Sequence[str] = ()):
        super().__init__()
        if not num_classes or min(num_classes.values()) < 1:
            raise ValueError(f"TemporalConvNet needs >= 1 class per task, got {dict(num_classes)}")
        self.in_dim, self.tasks = in_dim, list(num_classes)
        self.sizes = [int(num_classes[t]) for t in self.tasks]
        self.multilabel = [t in multilabel for t in self.tasks]  # a sigmoid per behaviour between stages
        total = sum(self.sizes)
        self.stages = nn.ModuleList(
            _Stage(in_dim if s == 0 else total, total, channels, layers, dropout) for s in range(stages))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"TemporalConvNet expected (B, T, {self.in_dim}), got {tuple(x.shape)}")
        real = _check_mask(mask, x)[:, None, :]  # (B, 1, T)
        m = real.to(x.dtype)
        x = x.transpose(1, 2).masked_fill(~real, 0.0)  # (B, D, T); fill, not multiply: NaN * 0 = NaN
        out = self.stages[0](x, m)  # (B, ΣK, T)
        outputs = [out]
        for stage in self.stages[1:]:
            probs = task_probs(out, self.sizes, self.multilabel) * m  # (B, ΣK, T)
            out = stage(probs, m)
            outputs.append(out)
        return [{t: c.transpose(1, 2) for t, c in zip(self.tasks, o.split(self.sizes, 1))}  # (B, T, K)
                for o in outputs]


def _check_mask(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    B, T = x.shape[:2]
    if mask is None:
        return torch.ones(B, T, dtype=torch.bool, device=x.device)
    if mask.shape != (B, T):
        raise ValueError(f"mask expected (B, T) = ({B}, {T}), got {tuple(mask.shape)}")
    return mask.bool()


class MultiTaskModel(nn.Module):
    """Visual features (+ pose graph features) -> MS-TCN -> one head per label task.

    ``vocab`` maps each task to its class names (their order is the logit order); ``tasks``
    picks the heads (default: every task of ``vocab``). With ``use_pose`` the pose branch is
    built, and it contributes zeros for samples without keypoints (``pose=None`` or
    ``has_pose`` False) so shapes never depend on the data.

    Shapes:
        visual: (B, T, Dv); pose: (B, T, J, 3) or None; mask: (B, T) bool; has_pose: (B,) bool.
        returns: list over stages of {task: (B, T, K_task)} logits (last stage = prediction).
    """

    def __init__(self, feature_dim: int, vocab: Mapping[str, Sequence[str]], *, tasks=None,
                 num_joints: int = 17, use_pose: bool = True, pose_dim: int = 64,
                 channels: int = 64, layers: int = 8, stages: int = 2, dropout: float = 0.3,
                 edges=None, feature_proj: bool = True, multilabel: Sequence[str] = ()):
        super().__init__()
        tasks = list(vocab) if tasks is None else list(tasks)
        missing = [t for t in tasks if t not in vocab or len(vocab[t]) == 0]
        if not tasks or missing:
            raise ValueError(f"no classes for task(s) {missing or tasks} in vocab {list(vocab)}; "
                             "every head needs labels in the training split")
        self.tasks = tasks
        self.vocab = {t: list(vocab[t]) for t in tasks}
        self.multilabel = [t for t in tasks if t in multilabel]  # tasks with a sigmoid per behaviour
        self.feature_dim, self.use_pose, self.pose_dim = feature_dim, use_pose, pose_dim
        # LayerNorm -> Linear -> Dropout puts features of any scale and width on the TCN's footing; MS-TCN
        # itself feeds the features straight to its first 1x1 conv (feature_proj=False, the recipe's choice)
        self.visual = (nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, channels), nn.Dropout(dropout))
                       if feature_proj else nn.Identity())
        self.pose = PoseGraphEncoder(num_joints, pose_dim, edges) if use_pose else None
        self.tcn = TemporalConvNet((channels if feature_proj else feature_dim) + (pose_dim if use_pose else 0),
                                   {t: len(self.vocab[t]) for t in tasks}, channels, layers, stages, dropout,
                                   self.multilabel)

    def forward(self, visual: torch.Tensor, pose: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, has_pose: torch.Tensor | None = None):
        if visual.dim() != 3 or visual.shape[-1] != self.feature_dim:
            raise ValueError(f"visual features expected (B, T, {self.feature_dim}), "
                             f"got {tuple(visual.shape)}")
        B, T, _ = visual.shape
        feats = [self.visual(visual)]  # (B, T, C)
        if self.pose is not None:
            if pose is None:
                feats.append(visual.new_zeros(B, T, self.pose_dim))
            else:
                if pose.shape[:2] != (B, T):
                    raise ValueError(f"pose expected (B, T, J, 3) with (B, T) = ({B}, {T}), "
                                     f"got {tuple(pose.shape)}")
                p = self.pose(pose).to(feats[0].dtype)  # (B, T, Dp)
                if has_pose is not None:
                    p = p * has_pose.reshape(B, 1, 1).to(p.dtype)
                feats.append(p)
        return self.tcn(torch.cat(feats, -1), mask)  # TCN input (B, T, C + Dp)

    def checkpoint_state(self) -> dict:
        """The checkpoint layout of :class:`kit.temporal.windowed.FrameLabeler`, with no backbone."""
        return {"head": self.state_dict(), "backbone": {}}

    def load_checkpoint_state(self, state: dict) -> None:
        self.load_state_dict(state["head"])


class ActionOnlyModel(MultiTaskModel):
    """The ``action`` head only (``model_type="action_only"``, the seed's second model)."""

    def __init__(self, feature_dim: int, vocab: Mapping[str, Sequence[str]], **kwargs):
        kwargs.pop("tasks", None)
        super().__init__(feature_dim, vocab, tasks=["action"], **kwargs)


def build_model(cfg: RunConfig, feature_dim: int, vocab: Mapping[str, Sequence[str]],
                num_joints: int = 17, multilabel: Sequence[str] = ()) -> MultiTaskModel:
    """The model ``cfg.model_type`` names, sized by the config's model fields; ``multilabel``
    names the tasks with a sigmoid per behaviour."""
    cls = ActionOnlyModel if cfg.model_type == "action_only" else MultiTaskModel
    return cls(feature_dim, vocab, num_joints=num_joints, use_pose=cfg.use_pose,
               pose_dim=cfg.pose_dim, channels=cfg.tcn_channels, layers=cfg.tcn_layers,
               stages=cfg.tcn_stages, dropout=cfg.dropout, feature_proj=cfg.feature_proj, multilabel=multilabel)


def segmentation_loss(stages: Sequence[Mapping[str, torch.Tensor]], labels: Mapping[str, torch.Tensor],
                      mask: torch.Tensor, smooth_weight: float = 0.15, smooth_tau: float = 4.0,
                      class_weights: Mapping[str, torch.Tensor] | None = None,
                      task_weights: Mapping[str, float] | None = None, loss: str = "ce",
                      focal_gamma: float = 2.0):
    """MS-TCN's loss, summed over stages, weighted over tasks.

    Per stage and task: cross-entropy over real, labelled frames (``IGNORE_INDEX`` and padding
    skipped; with class weights the mean is weighted, as in ``F.cross_entropy``) plus
    ``smooth_weight`` times the truncated MSE of Farha & Gall (2019):
    ``mean(clamp((log p_t - log p_{t-1}.detach())^2, max=tau^2))`` over classes and the adjacent
    pairs whose frames are both real. The smoothing needs no labels, so it still applies to a
    task with no labelled frame in the batch; that task's cross-entropy is 0 (never NaN).

    ``loss="focal"`` multiplies each frame's cross-entropy by ``(1 - p_true) ** focal_gamma`` (Lin
    et al., "Focal Loss for Dense Object Detection", ICCV 2017), so the many easy frames of common
    classes weigh less than the hard ones of a rare class; class weights still apply.

    A multi-label task (its labels ``(B, T, K)`` float 0/1, ``IGNORE_INDEX`` on unlabeled frames)
    gets binary cross-entropy per behaviour, averaged over labelled frames and behaviours (focal:
    each term times ``(1 - p_t) ** focal_gamma``); its class weights are each behaviour's
    ``pos_weight`` (:func:`kit.temporal.losses.pos_weights_from_counts`); its smoothing compares log-sigmoids.

    Shapes:
        stages: list of {task: (B, T, K)}; labels: {task: (B, T) long, or (B, T, K) float for a
        multi-label task}; mask: (B, T) bool.
        returns: (scalar loss, {"loss", "ce/<task>", "smooth/<task>": float}) where the parts
        are summed over stages, smooth already times ``smooth_weight``, neither task-weighted.
    """
    mask = mask.bool()
    pairs = mask[:, 1:] & mask[:, :-1]  # (B, T-1)
    total = 0.0
    parts: dict[str, torch.Tensor] = {}
    for stage in stages:
        for task, logits in stage.items():
            logits = logits.float()
            K = logits.shape[-1]
            w = None if not class_weights or task not in class_weights else \
                class_weights[task].to(logits.device, torch.float32)
            weight = 1.0 if task_weights is None else float(task_weights.get(task, 1.0))
            if labels[task].dim() == 3:  # multi-label: (B, T, K) 0/1 targets
                ce, smooth = _multilabel_loss(logits, labels[task], mask, pairs, w, loss, focal_gamma,
                                              smooth_weight, smooth_tau)
                total = total + weight * (ce + smooth)
                for key, value in ((f"ce/{task}", ce), (f"smooth/{task}", smooth)):
                    parts[key] = parts.get(key, 0.0) + value.detach()
                continue
            target = labels[task].masked_fill(~mask | (labels[task] < 0), IGNORE_INDEX)  # padding, UNSEEN
            if loss == "focal":
                ce = _focal_ce(logits.reshape(-1, K), target.reshape(-1), w, focal_gamma)
            else:
                ce = F.cross_entropy(logits.reshape(-1, K), target.reshape(-1), weight=w,
                                     ignore_index=IGNORE_INDEX, reduction="sum")
            real = target.reshape(-1) != IGNORE_INDEX
            denom = real.sum() if w is None else w[target.reshape(-1)[real]].sum()
            ce = ce / denom.clamp_min(1e-12)  # no labelled frame: 0 / eps = 0, no NaN
            logp = logits.log_softmax(-1)  # (B, T, K)
            sq = (logp[:, 1:] - logp[:, :-1].detach()).pow(2).clamp(max=smooth_tau ** 2)
            smooth = smooth_weight * (sq.mean(-1) * pairs).sum() / pairs.sum().clamp_min(1)
            total = total + weight * (ce + smooth)
            for key, value in ((f"ce/{task}", ce), (f"smooth/{task}", smooth)):
                parts[key] = parts.get(key, 0.0) + value.detach()
    if not isinstance(total, torch.Tensor):
        raise ValueError("segmentation_loss got no stage logits")
    values = torch.stack([total.detach(), *parts.values()]).tolist()  # one device sync
    return total, dict(zip(["loss", *parts], values))


def class_weights_from_counts(counts) -> torch.Tensor:
    """Inverse-frequency class weights, normalised to mean 1 over the classes that occur.

    A class with count 0 gets weight 0: it never occurs as a target in the data counted, and
    leaving it out keeps the normalisation about the classes that do.

    Example:
        >>> class_weights_from_counts([1, 3, 0]).tolist()
        [1.5, 0.5, 0.0]
    """
    c = torch.as_tensor(counts, dtype=torch.float32)
    seen = c > 0
    if not seen.any():
        raise ValueError(f"class_weights_from_counts got no positive count: {c.tolist()}")
    w = torch.where(seen, 1.0 / c.clamp_min(1e-12), torch.zeros_like(c))
    return w / w[seen].mean()
