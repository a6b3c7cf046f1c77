"""Per-frame models: a pose graph encoder, a multi-stage temporal conv net, and the task heads.

Legend: ``B`` batch, ``T`` frames in the window, ``J`` joints, ``F`` per-joint input features,
``D`` width (``Dv`` visual, ``Dp`` pose, ``C`` TCN channels), ``K`` classes of one task
(``ΣK`` all tasks' classes side by side).

```
visual (B, T, Dv) -> LayerNorm -> Linear -> Dropout -> (B, T, C)  --+
pose (B, T, J, 3) -> PoseGraphEncoder -------------> (B, T, Dp) --+-- concat -> temporal model
                                                                         -> [stage]{task: (B, T, K)}
```
The temporal model is ``temporal_model`` from :mod:`kit.temporal.models` (MS-TCN by default:
stages of dilated residual ``Conv1d`` layers, each later stage refining the softmax of the one
before); every one keeps padded frames from leaking into real ones.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from kit.config import RunConfig
from kit.data import COCO17_EDGES  # noqa: F401  (re-exported: the default skeleton)
from kit.errors import RunError
from kit.temporal.models import build_temporal
from kit.temporal.models.mstcn import TemporalConvNet  # noqa: F401  (re-exported: its home before kit.temporal.models)
from kit.temporal.losses import _focal_ce, _multilabel_loss  # rare classes, overlapping behaviours

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

    Several individuals (``individuals > 1``): keypoints hold ``I`` skeletons one after another,
    ``(B, T, I * J, 3)`` for any ``I``; each is encoded alone, then the mean and max over the
    individuals present go through a linear: the result does not depend on their order, so a tracker
    swapping identities changes nothing. An individual with no valid joint in a frame is absent.

    Shapes:
        keypoints: (B, T, J, 3) x, y, score, or (B, T, I * J, 3) with ``individuals > 1``;
            NaN or score <= 0 marks a missing joint.
        returns: (B, T, out_dim)
    """

    def __init__(self, num_joints: int = 17, out_dim: int = 64, edges=None, hidden: int = 64,
                 layers: int = 3, motion_gain: float = 10.0, individuals: int = 1):
        super().__init__()
        # built only for several individuals, so single-individual checkpoints keep their keys
        self.individual_pool = nn.Linear(2 * out_dim, out_dim) if individuals > 1 else None
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
        J = self.num_joints
        several = self.individual_pool is not None
        if keypoints.dim() != 4 or keypoints.shape[3] != 3 or keypoints.shape[2] % J or \
                (not several and keypoints.shape[2] != J):
            raise ValueError(f"PoseGraphEncoder expected keypoints (B, T, {'I * ' if several else ''}{J}, 3), "
                             f"got {tuple(keypoints.shape)}")
        if not several:
            return self._encode(keypoints)
        B, T, IJ, _ = keypoints.shape
        per = keypoints.reshape(B, T, IJ // J, J, 3).transpose(1, 2).reshape(-1, T, J, 3)  # (B*I, T, J, 3)
        h = self._encode(per).reshape(B, IJ // J, T, -1).transpose(1, 2)  # (B, T, I, Dp)
        kp = keypoints.reshape(B, T, IJ // J, J, 3)
        here = (torch.isfinite(kp).all(-1) & (kp[..., 2] > 0)).any(-1)  # (B, T, I): someone is there
        n = here.sum(2, keepdim=True)  # (B, T, 1)
        mean = (h * here[..., None]).sum(2) / n.clamp_min(1)  # (B, T, Dp)
        peak = h.masked_fill(~here[..., None], float("-inf")).amax(2)  # (B, T, Dp)
        peak = torch.where(n > 0, peak, torch.zeros_like(peak))
        return self.individual_pool(torch.cat([mean, peak], -1)) * (n > 0)  # (B, T, Dp)

    def _encode(self, keypoints: torch.Tensor) -> torch.Tensor:
        """One skeleton per sample: (B, T, J, 3) -> (B, T, Dp)."""
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


class MultiTaskModel(nn.Module):
    """Visual features (+ pose graph features) -> temporal model -> one head per label task.

    ``vocab`` maps each task to its class names (their order is the logit order); ``tasks``
    picks the heads (default: every task of ``vocab``). With ``use_pose`` the pose branch is
    built, and it contributes zeros for samples without keypoints (``pose=None`` or
    ``has_pose`` False) so shapes never depend on the data.

    ``temporal_model`` names the temporal model (``self.tcn``, built by
    :func:`kit.temporal.models.build_temporal` with ``channels``, ``layers``, ``stages``,
    ``dropout`` and ``temporal_hyper``). ``forward(..., loss_kw=...)`` returns the temporal model's
    ``training_loss`` instead of the logits (``loss_kw`` holds ``labels`` and the loss's options),
    so the training loop reaches every model's own objective through one (DDP-wrapped) forward.

    Shapes:
        visual: (B, T, Dv); pose: (B, T, J, 3) or None; mask: (B, T) bool; has_pose: (B,) bool.
        returns: list over stages of {task: (B, T, K_task)} logits (last stage = prediction).
    """

    def __init__(self, feature_dim: int, vocab: Mapping[str, Sequence[str]], *, tasks=None,
                 num_joints: int = 17, use_pose: bool = True, pose_dim: int = 64,
                 channels: int = 64, layers: int = 8, stages: int = 2, dropout: float = 0.3,
                 edges=None, feature_proj: bool = True, individuals: int = 1, temporal_model: str = "mstcn",
                 temporal_hyper: Mapping | None = None, multilabel=()):
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
        self.pose = PoseGraphEncoder(num_joints, pose_dim, edges, individuals=individuals) if use_pose else None
        self.temporal_model = temporal_model
        self.tcn = build_temporal(temporal_model, (channels if feature_proj else feature_dim) + (pose_dim if use_pose else 0),
                                  {t: len(self.vocab[t]) for t in tasks}, multilabel=[t for t in multilabel if t in tasks],
                                  channels=channels, layers=layers, stages=stages, dropout=dropout,
                                  **dict(temporal_hyper or {}))

    def forward(self, visual: torch.Tensor, pose: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, has_pose: torch.Tensor | None = None, loss_kw: dict | None = None):
        if visual.dim() != 3 or visual.shape[-1] != self.feature_dim:
            raise ValueError(f"visual features expected (B, T, {self.feature_dim}), "
                             f"got {tuple(visual.shape)}")
        B, T, _ = visual.shape
        feats = [self.visual(visual)]  # (B, T, C)
        if self.pose is not None:
            # no sample has keypoints: zeros, exactly what the graph times has_pose = 0 gives, without running it
            if pose is None or (has_pose is not None and not bool(has_pose.any())):
                feats.append(visual.new_zeros(B, T, self.pose_dim))
            else:
                if pose.shape[:2] != (B, T):
                    raise ValueError(f"pose expected (B, T, J, 3) with (B, T) = ({B}, {T}), "
                                     f"got {tuple(pose.shape)}")
                p = self.pose(pose).to(feats[0].dtype)  # (B, T, Dp)
                if has_pose is not None:
                    p = p * has_pose.reshape(B, 1, 1).to(p.dtype)
                feats.append(p)
        x = torch.cat(feats, -1)  # temporal model input (B, T, C + Dp)
        if loss_kw is not None:
            return self.tcn.training_loss(x, mask, **loss_kw)
        return self.tcn(x, mask)

    def checkpoint_state(self) -> dict:
        """The checkpoint layout of :class:`kit.temporal.windowed.FrameLabeler`, with no backbone."""
        return {"head": self.state_dict(), "backbone": {}, "temporal_model": self.temporal_model}

    def load_checkpoint_state(self, state: dict) -> None:
        check_temporal_model(state, self.temporal_model)
        self.load_state_dict(state["head"])


def check_temporal_model(state: dict, temporal_model: str) -> None:
    """RunError unless a checkpoint's ``model`` state holds ``temporal_model`` (checkpoints before it: mstcn)."""
    saved = state.get("temporal_model", "mstcn")
    if saved != temporal_model:
        raise RunError(f"this checkpoint holds a {saved!r} temporal model, not {temporal_model!r}: load it with "
                       f"temporal_model={saved!r} (the run's config.json says which), or train a new run")


class ActionOnlyModel(MultiTaskModel):
    """The ``action`` head only (``model_type="action_only"``, the seed's second model)."""

    def __init__(self, feature_dim: int, vocab: Mapping[str, Sequence[str]], **kwargs):
        kwargs.pop("tasks", None)
        super().__init__(feature_dim, vocab, tasks=["action"], **kwargs)


def build_model(cfg: RunConfig, feature_dim: int, vocab: Mapping[str, Sequence[str]],
                num_joints: int = 17, skeleton: Mapping | None = None, multilabel: Sequence[str] = ()) -> MultiTaskModel:
    """The model ``cfg.model_type`` names, sized by the config's model fields.

    ``skeleton`` (:meth:`kit.data.pose_formats.Skeleton.to_dict`: joints, edges, individuals) gives the
    pose graph; ``num_joints`` is then the data's flat joint count, ``I * J``. None: ``num_joints``
    joints of one individual (COCO-17 edges when 17). ``multilabel`` names the tasks with a sigmoid per
    behaviour.
    """
    cls = ActionOnlyModel if cfg.model_type == "action_only" else MultiTaskModel
    edges, individuals = None, 1
    if skeleton:
        J = len(skeleton["joints"])
        edges, individuals, num_joints = [tuple(e) for e in skeleton["edges"]], max(1, num_joints // J), J
    return cls(feature_dim, vocab, num_joints=num_joints, use_pose=cfg.use_pose, edges=edges, individuals=individuals,
               pose_dim=cfg.pose_dim, channels=cfg.tcn_channels, layers=cfg.tcn_layers,
               stages=cfg.tcn_stages, dropout=cfg.dropout, feature_proj=cfg.feature_proj,
               temporal_model=cfg.temporal_model, temporal_hyper=_temporal_hyper(cfg), multilabel=multilabel)


def _temporal_hyper(cfg: RunConfig) -> dict:
    """``temporal_hyper``, with DiffAct's sampling steps and noise seed from their own fields."""
    if cfg.temporal_model != "diffact":
        return dict(cfg.temporal_hyper)
    return {"sampling_timesteps": cfg.diffact_sampling_steps, "seed": cfg.seed, **cfg.temporal_hyper}


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
