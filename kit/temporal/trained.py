"""A trained run, loaded to predict: its config, vocabulary, checkpoint, model and features.

Evaluation (``kit.results.evaluate``) and prediction on new videos (``kit.results.predict``) go
through :class:`TrainedRun`, so both predict exactly as validation did during training:

- ``whole_video`` runs: the head alone, one forward pass per video over its per-frame features.
  Features come from the dataset (the MS-TCN layout) or from the feature store beside the run
  (``<output_dir>/features/...``). Only videos without current features need the backbone: it is
  built then (and checked against the fingerprint the run was trained with), never otherwise, so
  evaluating extracted features costs the head's checkpoint and nothing more.
- ``windows`` runs: backbone + head on windows of ``val_T``, overlapping predictions averaged.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch

from kit.config import CHECKPOINTS, RunConfig
from kit.data.contract import VideoRecord
from kit.errors import ConfigError, RunError
from kit.features.backbones import Backbone
from kit.features.extract import backbone_for, extract
from kit.features.store import FeatureStore
from kit.files import load_checkpoint, read_json
from kit.temporal.model import build_model
from kit.temporal.sequences import VideoPrediction, predict_sequences

log = logging.getLogger("kit")


class TrainedRun:
    """``TrainedRun(run_dir, "best").predict(records)`` -> per-frame probabilities of every video.

    Attributes:
        run, cfg, vocab ({task: class names}), splits ({split: stems}), state (the checkpoint),
        checkpoint ("best" | "last"), epoch, pipeline, fingerprint (of the backbone it was trained
        on), num_joints, skeleton, device, multilabel (tasks with a sigmoid per behaviour), thresholds
        (``{task: {behaviour: threshold}}`` from the run's ``thresholds.json``).
    """

    def __init__(self, run: str | Path, checkpoint: str = "best", device: str | torch.device | None = None):
        if checkpoint not in CHECKPOINTS:
            raise ConfigError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
        self.run = Path(run)
        self.cfg = RunConfig.load(self.run / "config.json")
        self.vocab = read_json(self.run / "labels.json")
        self.splits = read_json(self.run / "splits.json")
        self.checkpoint = checkpoint
        self.state = load_checkpoint(self.run / f"{checkpoint}.pt")
        self.epoch = int(self.state.get("epoch", -1))
        self.pipeline = self.state.get("pipeline", "windows")  # runs of kit 0.1 trained on windows
        self.fingerprint = self.state.get("backbone_fingerprint", "")
        self.num_joints = int(self.state.get("num_joints", 17))
        self.skeleton = self.state.get("skeleton")  # joints, edges, individuals (None: runs before pose files)
        self.multilabel = list(self.state.get("multilabel", []))
        path = self.run / "thresholds.json"  # chosen on the validation split; a user may edit them
        self.thresholds = read_json(path) if path.is_file() else dict(self.state.get("thresholds", {}))
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._backbone: Backbone | None = None
        self._model: torch.nn.Module | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.vocab)

    def backbone(self) -> Backbone:
        """The run's backbone (frozen), built on first use; it must be the one the run was trained on."""
        if self._backbone is None:
            bb = backbone_for(self.cfg, freeze=True)
            if self.fingerprint and bb.fingerprint != self.fingerprint:  # e.g. the 'auto' chain finds another model
                raise RunError(f"run {self.run} was trained with backbone {self.fingerprint}, but {bb.fingerprint} "
                                 "loaded now: restore that backbone (backbone_path, the HF cache) to use this run")
            self._backbone = bb.to(self.device)
        return self._backbone

    def model(self) -> torch.nn.Module:
        """The trained model in eval mode: the head (whole videos) or backbone + head (windows)."""
        if self._model is None:
            if self.pipeline == "whole_video":
                model = build_model(self.cfg, int(self.state["feature_dim"]), self.vocab, num_joints=self.num_joints,
                                    skeleton=self.skeleton, multilabel=self.multilabel)
            else:
                from kit.temporal.windowed import FrameLabeler

                bb = self.backbone()
                model = FrameLabeler(bb, build_model(self.cfg, bb.feature_dim, self.vocab, num_joints=self.num_joints,
                                    skeleton=self.skeleton))
            model.load_checkpoint_state(self.state["model"])
            self._model = model.to(self.device).eval()
        return self._model

    def features_of(self, records: list[VideoRecord], batch_size: int | None = None,
                    progress: bool = False) -> Callable[[VideoRecord], Path]:
        """Where each video's features are, extracting those missing (whole-video runs only).

        Stores live beside the run (``<run>/../features/<dataset>/<fingerprint>/``), one per folder of videos.
        """
        where: dict[str, Path] = {}
        by_folder: dict[Path, list[VideoRecord]] = defaultdict(list)
        for r in records:
            if r.features_path is not None:
                where[r.stem] = r.features_path
            else:
                by_folder[r.video_path.parent].append(r)
        for folder, recs in by_folder.items():
            store = FeatureStore.at(self.run.parent, folder, self.fingerprint)
            missing = [r for r in recs if not store.is_current(r.stem, r.video_path)]
            if missing:
                log.info(f"[info] Extracting features of {len(missing)} video(s) with the run's backbone into "
                         f"{store.root}")
                extract(missing, self.backbone(), store, batch_size=batch_size, dtype=self.cfg.feature_dtype,
                        device=self.device, progress=progress)
            where.update({r.stem: store.path(r.stem) for r in recs})
        return lambda r: where[r.stem]

    def predict(self, records: list[VideoRecord], batch_size: int | None = None,
                progress: bool = False) -> list[VideoPrediction]:
        """Per-frame class probabilities of every video (labels where the records have them)."""
        if self.pipeline == "whole_video":
            features_of = self.features_of(records, progress=progress)
            return predict_sequences(self.model(), records, self.vocab, features_of, self.device,
                                     self.cfg.sample_rate, self.num_joints, progress)
        from kit.temporal.windowed import feature_cache, predict_videos

        cache = feature_cache(self.backbone(), self.cfg, output_dir=self.run.parent)  # the one training filled
        return predict_videos(self.model(), records, self.vocab, self.cfg.val_T, self.device, cache,
                              batch_size=batch_size or self.cfg.batch_size, progress=progress)
