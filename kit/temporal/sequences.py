"""Whole videos as sequences of features: the temporal model's side of the two-stage path.

The way MS-TCN, ASFormer, DiffAct and LTContext train: per-frame features computed once
(``kit.features.extract`` or a benchmark's ``features/<vid>.npy``), the temporal model trained on
full sequences (batches of whole videos, padded and masked) and evaluated with one forward pass per
video. ``sample_rate`` keeps every n-th frame (50Salads: 2), as MS-TCN does at training and test
time; predictions are repeated ``sample_rate`` times back to every frame and scored at full rate.
``max_len`` (0 = off) trains on random crops of at most that many (subsampled) frames for memory:
crops start anywhere in ``[-(max_len - 1), L - 1]`` and are cut at the video's ends, so every frame
is equally likely to be trained on.

Legend: ``B`` videos in a batch, ``L`` frames of a video, ``L'`` after ``sample_rate`` (and the
crop), ``D`` feature width, ``J`` joints, ``K`` classes of a task.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kit.data.contract import VideoRecord
from kit.data.feature_files import load_feature_columns, load_features
from kit.data.labels import IGNORE_INDEX, encode_labels, encode_multilabel


@dataclass
class VideoPrediction:
    """Per-frame class probabilities of one video, at full frame rate.

    A multi-label task (in ``multilabel``) has a sigmoid probability per behaviour and 0/1 labels
    ``(L, K)`` (``IGNORE_INDEX`` on unlabeled frames); decide with :func:`kit.temporal.behaviours.decide`.
    """

    stem: str
    probs: dict[str, np.ndarray]  # {task: (L, K)}
    labels: dict[str, np.ndarray]  # {task: (L,)} ground-truth class index, IGNORE_INDEX unlabeled; (L, K) multi-label
    multilabel: tuple = ()  # tasks with a sigmoid per behaviour

    def pred(self, task: str) -> np.ndarray:
        if task in self.multilabel:
            raise ValueError(f"task {task!r} is multi-label: decide per behaviour with kit.temporal.behaviours.decide")
        return self.probs[task].argmax(1)


class SequenceDataset(torch.utils.data.Dataset):
    """One item per video: its features, labels, keypoints and mask after ``sample_rate`` (and a crop).

    Args:
        records: the videos; labels and keypoints at full frame rate.
        vocab: ``{task: class names}``; labels outside it become ``IGNORE_INDEX``.
        features_of: ``record -> path`` of its ``(D, L)`` features.
        sample_rate: keep every n-th frame.
        max_len: crop to at most this many frames (0 = whole videos); the crop is drawn anew each
            epoch from ``(seed, epoch, video)``.

    Items: feats (L', D) float32, labels {task: (L',)}, pose (L', J, 3) or None (a video without
    keypoints: no zeros are materialised), has_pose (), mask (L',), video_id, length (L').
    """

    def __init__(self, records: list[VideoRecord], vocab: dict[str, list[str]],
                 features_of: Callable[[VideoRecord], Path], sample_rate: int = 1, max_len: int = 0,
                 seed: int = 0, num_joints: int = 17, multilabel: tuple = ()):
        if sample_rate < 1 or max_len < 0:
            raise ValueError(f"sample_rate must be >= 1 and max_len >= 0, got {sample_rate}, {max_len}")
        self.records, self.vocab, self.features_of = records, vocab, features_of
        self.sample_rate, self.max_len, self.seed, self.num_joints = sample_rate, max_len, seed, num_joints
        self._labels = [_encode(r, vocab, multilabel) for r in records]
        self.epoch = 0
        self.order = list(range(len(records)))

    def set_epoch(self, epoch: int, shuffle: bool = True) -> None:
        """A permutation of the videos (and new crops) that depends only on ``(seed, epoch)``."""
        self.epoch = epoch
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        self.order = torch.randperm(len(self.records), generator=g).tolist() if shuffle else list(range(len(self)))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        v = self.order[i]
        rec, sr = self.records[v], self.sample_rate
        feats = load_features(self.features_of(rec), rec.num_frames)[:, ::sr]  # (D, L')
        n = feats.shape[1]
        a, b = self._crop(v, n)
        x = torch.from_numpy(np.ascontiguousarray(feats[:, a:b].T, dtype=np.float32))  # (L', D)
        labels = {t: torch.from_numpy(lab[::sr][a:b].copy()) for t, lab in self._labels[v].items()}
        pose = None  # a video without keypoints carries nothing: the model's pose branch is skipped, not fed zeros
        if rec.keypoints is not None:
            pose = torch.from_numpy(np.ascontiguousarray(rec.keypoints[::sr][a:b], dtype=np.float32))
        return dict(feats=x, labels=labels, pose=pose, has_pose=torch.tensor(rec.keypoints is not None),
                    mask=torch.ones(b - a, dtype=torch.bool), video_id=rec.stem, length=b - a)

    def _crop(self, v: int, n: int) -> tuple[int, int]:
        if not self.max_len or n <= self.max_len:
            return 0, n
        g = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) * 1_000_003 + v)
        start = int(torch.randint(-(self.max_len - 1), n, (1,), generator=g))
        return max(0, start), min(n, start + self.max_len)


def _encode(rec: VideoRecord, vocab: dict, multilabel) -> dict[str, np.ndarray]:
    """{task: (L,) class indices, or (L, K) 0/1 behaviours for a multi-label task}."""
    return {t: (encode_multilabel if t in multilabel else encode_labels)(rec.labels.get(t), vocab[t], rec.num_frames)
            for t in vocab}


def collate_sequences(items: list[dict]) -> dict:
    """Pads whole videos to the longest: feats (B, L, D), labels {task: (B, L)} (IGNORE_INDEX past
    each video's end; (B, L, K) float for a multi-label task), pose (B, L, J, 3) or None when no video of the
    batch has keypoints (zeros for those without when some have), mask (B, L) False on padding, has_pose (B,)."""
    B, L = len(items), max(it["length"] for it in items)
    D = items[0]["feats"].shape[1]
    posed = [it["pose"] for it in items if it["pose"] is not None]
    feats = torch.zeros(B, L, D)
    pose = torch.zeros(B, L, *posed[0].shape[1:]) if posed else None  # (B, L, J, 3)
    mask = torch.zeros(B, L, dtype=torch.bool)
    labels = {t: torch.full((B, L, *lab.shape[1:]), IGNORE_INDEX, dtype=lab.dtype)  # (B, L[, K])
              for t, lab in items[0]["labels"].items()}
    for b, it in enumerate(items):
        n = it["length"]
        feats[b, :n], mask[b, :n] = it["feats"], True
        if it["pose"] is not None:
            pose[b, :n] = it["pose"]
        for t, lab in it["labels"].items():
            labels[t][b, :n] = lab
    return dict(feats=feats, pose=pose, mask=mask, labels=labels, has_pose=torch.stack([it["has_pose"] for it in items]),
                video_id=[it["video_id"] for it in items], length=torch.tensor([it["length"] for it in items]))


# Frames (after sample_rate) of a long video's chunk, besides the receptive-field overlap on either side:
# with MS-TCN's default halo (511) a chunk is about a 2-minute video at 25 fps, so a long video peaks where
# a 2-minute one does (measured: kit bench, serving); never less than the halo, so the overlap costs <= 3x
CHUNK = 2048
# Modules whose outputs at frame t depend only on frames t - halo .. t + halo, halo from the Conv1d layers
# (MS-TCN; the pose graph looks 1 frame back): a model made of nothing else can label a long video in chunks.
_LOCAL = {"MultiTaskModel", "ActionOnlyModel", "TemporalConvNet", "_Stage", "_DilatedResidual", "PoseGraphEncoder",
          "Sequential", "ModuleList", "Conv1d", "Linear", "LayerNorm", "Dropout", "Identity", "ReLU"}


def receptive_halo(model: torch.nn.Module) -> int | None:
    """Frames on each side that reach one output frame of ``model``, or None when unknown.

    The sum over every ``Conv1d`` of ``dilation * (kernel - 1) / 2`` (an upper bound: stages and layers are
    chained) plus 1 (the pose branch's motion term reads the previous frame). None for a model holding any
    module outside a known set of frame-local ones (attention, recurrence: they see the whole sequence).
    """
    if any(type(m).__name__ not in _LOCAL for m in model.modules()):
        return None
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    return 1 + sum(m.dilation[0] * (m.kernel_size[0] - 1) // 2 for m in convs)


@torch.no_grad()
def predict_sequences(model: torch.nn.Module, records: list[VideoRecord], vocab: dict[str, list[str]],
                      features_of: Callable[[VideoRecord], Path], device: torch.device, sample_rate: int = 1,
                      num_joints: int = 17, progress: bool = False) -> list[VideoPrediction]:
    """Every frame of every video in one forward pass per video; probabilities at full frame rate.

    ``model`` maps ``(visual (1, L', D), pose, mask, has_pose)`` to per-stage ``{task: (1, L', K)}`` logits
    (``kit.temporal.model.MultiTaskModel``); the last stage is the prediction.
    """
    model.eval()
    multilabel = tuple(getattr(model, "multilabel", ()))
    ds = SequenceDataset(records, vocab, features_of, sample_rate=sample_rate, num_joints=num_joints,
                         multilabel=multilabel)
    tasks = list(model.tasks)
    out = []
    it = range(len(ds))
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="predict", unit="video", leave=False)
    halo = receptive_halo(model)
    for i in it:
        rec, n = records[i], -(-records[i].num_frames // sample_rate)  # L'
        if halo is None or n <= max(CHUNK, halo) + 2 * halo:  # the whole video in one pass
            batch = collate_sequences([ds[i]])
            pose = batch["pose"].to(device) if batch["pose"] is not None else None
            stages = model(batch["feats"].to(device), pose, batch["mask"].to(device), batch["has_pose"].to(device))
            lprobs = {t: _probs(stages[-1][t][0], t in multilabel) for t in tasks}  # (L', K)
        else:
            lprobs = _predict_chunks(model, rec, features_of(rec), tasks, device, sample_rate, halo, multilabel)
        probs = {t: np.repeat(p, sample_rate, axis=0)[:rec.num_frames]  # (L, K): MS-TCN's test-time upsampling
                 for t, p in lprobs.items()}
        labels = {t: lab for t, lab in _encode(rec, vocab, multilabel).items() if t in tasks}
        out.append(VideoPrediction(rec.stem, probs, labels, multilabel))
    return out


def _probs(logits: torch.Tensor, multilabel: bool) -> np.ndarray:
    """``(L', K)`` logits of one task as probabilities: a sigmoid per behaviour, else a softmax."""
    logits = logits.float()
    return (logits.sigmoid() if multilabel else logits.softmax(-1)).cpu().numpy()


def _predict_chunks(model: torch.nn.Module, rec: VideoRecord, path: Path, tasks: list[str], device,
                    sample_rate: int, halo: int, multilabel=()) -> dict[str, np.ndarray]:
    """A long video in chunks of ``max(CHUNK, halo)`` frames, each with ``halo`` frames of context on either side:
    every kept frame sees all it would see in one pass, so the result is the whole pass's (up to float
    rounding), and memory is that of one chunk, whatever the video's length. ``{task: (L', K)}``"""
    sr, n, step = sample_rate, -(-rec.num_frames // sample_rate), max(CHUNK, halo)
    out: dict[str, np.ndarray] = {}
    has_pose = torch.tensor([rec.keypoints is not None], device=device)
    for a in range(0, n, step):
        b = min(n, a + step)
        lo, hi = max(0, a - halo), min(n, b + halo)
        x = load_feature_columns(path, lo * sr, hi * sr, sr, rec.num_frames)  # (D, hi - lo)
        feats = torch.from_numpy(np.ascontiguousarray(x.T))[None].to(device)  # (1, l, D)
        pose = None
        if rec.keypoints is not None:
            kp = np.ascontiguousarray(rec.keypoints[lo * sr:hi * sr:sr], dtype=np.float32)  # (l, J, 3)
            pose = torch.from_numpy(kp)[None].to(device)  # (1, l, J, 3)
        mask = torch.ones(1, hi - lo, dtype=torch.bool, device=device)
        stages = model(feats, pose, mask, has_pose)
        for t in tasks:
            p = _probs(stages[-1][t][0, a - lo:b - lo], t in multilabel)  # (b - a, K)
            out.setdefault(t, np.empty((n, p.shape[1]), np.float32))[a:b] = p
    return out


class SequencePath:
    """What the training loop needs from the whole-video path: the head, the data, a step, predictions."""

    unit = "videos"

    def __init__(self, head: torch.nn.Module, train_records: list[VideoRecord], vocab: dict,
                 features_of: Callable[[VideoRecord], Path], sample_rate: int = 1, max_len: int = 0, seed: int = 0,
                 num_joints: int = 17, multilabel: tuple = ()):
        self.model, self.features_of = head, features_of
        self.sample_rate, self.num_joints = sample_rate, num_joints
        self.dataset = SequenceDataset(train_records, vocab, features_of, sample_rate, max_len, seed, num_joints,
                                       multilabel)
        self.collate = collate_sequences

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def forward(self, model: torch.nn.Module, batch: dict, acc, loss_kw: dict | None = None):
        """Per-stage logits, or with ``loss_kw`` the model's training loss (``MultiTaskModel.forward``)."""
        return model(batch["feats"], batch["pose"], batch["mask"], batch["has_pose"], loss_kw=loss_kw)

    def predict(self, model: torch.nn.Module, records: list[VideoRecord], vocab: dict, device,
                progress: bool = False) -> list[VideoPrediction]:
        return predict_sequences(model, records, vocab, self.features_of, device, self.sample_rate,
                                 self.num_joints, progress)

    def counters(self) -> tuple[int, int]:
        return 0, 0
