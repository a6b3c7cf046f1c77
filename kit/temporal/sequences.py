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
from kit.data.feature_files import load_features
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

    Items: feats (L', D) float32, labels {task: (L',)}, pose (L', J, 3), has_pose (), mask (L',),
    video_id, length (L').
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
        pose = torch.zeros(b - a, self.num_joints, 3)
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
    each video's end; (B, L, K) float for a multi-label task), pose (B, L, J, 3), mask (B, L) False on
    padding, has_pose (B,)."""
    B, L = len(items), max(it["length"] for it in items)
    D, J = items[0]["feats"].shape[1], items[0]["pose"].shape[1]
    feats, pose = torch.zeros(B, L, D), torch.zeros(B, L, J, 3)
    mask = torch.zeros(B, L, dtype=torch.bool)
    labels = {t: torch.full((B, L, *lab.shape[1:]), IGNORE_INDEX, dtype=lab.dtype)  # (B, L[, K])
              for t, lab in items[0]["labels"].items()}
    for b, it in enumerate(items):
        n = it["length"]
        feats[b, :n], pose[b, :n], mask[b, :n] = it["feats"], it["pose"], True
        for t, lab in it["labels"].items():
            labels[t][b, :n] = lab
    return dict(feats=feats, pose=pose, mask=mask, labels=labels, has_pose=torch.stack([it["has_pose"] for it in items]),
                video_id=[it["video_id"] for it in items], length=torch.tensor([it["length"] for it in items]))


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
    for i in it:
        item, rec = ds[i], records[i]
        batch = collate_sequences([item])
        stages = model(batch["feats"].to(device), batch["pose"].to(device), batch["mask"].to(device),
                       batch["has_pose"].to(device))
        probs = {}
        for t in tasks:
            logits = stages[-1][t][0].float()  # (L', K)
            p = (logits.sigmoid() if t in multilabel else logits.softmax(-1)).cpu().numpy()
            probs[t] = np.repeat(p, sample_rate, axis=0)[:rec.num_frames]  # (L, K): MS-TCN's test-time upsampling
        labels = {t: lab for t, lab in _encode(rec, vocab, multilabel).items() if t in tasks}
        out.append(VideoPrediction(rec.stem, probs, labels, multilabel))
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

    def forward(self, model: torch.nn.Module, batch: dict, acc) -> list[dict[str, torch.Tensor]]:
        return model(batch["feats"], batch["pose"], batch["mask"], batch["has_pose"])

    def predict(self, model: torch.nn.Module, records: list[VideoRecord], vocab: dict, device,
                progress: bool = False) -> list[VideoPrediction]:
        return predict_sequences(model, records, vocab, self.features_of, device, self.sample_rate,
                                 self.num_joints, progress)

    def counters(self) -> tuple[int, int]:
        return 0, 0
