"""The two-stage path in words and tables, for the notebooks: frame geometry, feature stores, a run's
features, which split a score is on, the videos to label.

- 01, 02: :func:`geometry_note` (what ``resize_mode`` does to a video's frames), :func:`clip_frames`
  (one clip as extraction decodes it);
- 02, 03: :func:`extraction_table` (a feature store's videos: shape, time per minute of video),
  :func:`run_features` (the pipeline a run used and where its features are);
- 04: :func:`evaluation_note` (held-out or selection split, unseen classes);
- 05: :func:`videos_to_label` (the given videos, or the run's held-out ones).

Legend: ``D`` feature width, ``L`` frames of a video.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from kit.config import RunConfig
from kit.data.contract import VideoRecord
from kit.data.dataset import run_records
from kit.features.store import FeatureStore
from kit.files import load_checkpoint, read_json
from kit.results.inspect import project_path, window_frames

__all__ = ["geometry_note", "clip_frames", "extraction_table", "run_features", "evaluation_note", "videos_to_label"]


def geometry_note(resize, width: int, height: int) -> str:
    """One sentence: how a ``width x height`` frame becomes the backbone's square (a ``Resize``)."""
    S = resize.size
    nh, nw, top, left = resize.geometry(height, width)
    if resize.mode == "squash" and width == height:
        return f"squash: {width}x{height} -> {S}x{S}: a square frame, scaled"
    if resize.mode == "squash":
        return (f"squash: {width}x{height} -> {S}x{S}, the aspect ratio changed "
                f"(x scaled by {S / width:.3f}, y by {S / height:.3f})")
    if resize.mode == "pad":
        return (f"pad: {width}x{height} -> {nw}x{nh}, placed at ({left}, {top}) on a {S}x{S} canvas of the mean "
                "colour: the whole frame is seen, smaller")
    if (nh, nw) == (S, S):
        return f"crop: {width}x{height} -> {S}x{S}: a square frame, scaled, nothing cut"
    side, cut = ("left and right", nw - S) if nw > S else ("top and bottom", nh - S)
    return (f"crop: {width}x{height} -> {nw}x{nh} (shortest edge {min(nw, nh)}), centre {S}x{S} kept: {cut} of {max(nw, nh)} "
            f"px cut at the {side} ({100 * cut / max(nw, nh):.0f}%); what happens there is not seen")


def clip_frames(record: VideoRecord, frame: int, resize, num_frames: int = 16,
                frame_step: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames of the clip holding ``frame``, decoded as extraction decodes them (``resize``).

    Clips of ``num_frames`` frames taken every ``frame_step`` frames tile the video from frame 0
    (``Backbone.clip_starts``); past the end the last frame repeats.

    Returns:
        frames ``(F, 3, S, S)`` uint8 and their frame indices ``(F,)``.
    """
    span = num_frames * frame_step
    start = int(min(max(frame, 0), record.num_frames - 1)) // span * span
    return window_frames(record, span, start, resize, positions=torch.arange(num_frames) * frame_step)


def extraction_table(store: FeatureStore | str | Path, stems: list[str] | None = None) -> pd.DataFrame:
    """One row per extracted video of a store: the array's shape ``(D, L)``, dtype, size, and the time
    extraction took, also per minute of video (from each sidecar: a store re-read costs no video).

    ``store`` may be a folder; ``""`` or a folder without sidecars (a benchmark's given features)
    gives an empty table.
    """
    if not isinstance(store, FeatureStore):
        if not str(store):
            return pd.DataFrame()
        store = FeatureStore(store)
    rows = []
    for stem in stems if stems is not None else store.stems():
        info = store.info(stem)
        if info is None:
            raise FileNotFoundError(f"{store.sidecar(stem)} does not exist: {stem} was not extracted into {store.root}")
        minutes = info["num_frames"] / info["fps"] / 60 if info.get("fps") else float("nan")
        rows.append({"video": stem, "shape (D, L)": tuple(info["shape"]), "dtype": info["dtype"],
                     "MB": round(store.path(stem).stat().st_size / 2**20, 2), "frames": info["num_frames"],
                     "fps": info["fps"], "clips": info.get("clips"), "precision": info.get("precision"),
                     "seconds": info.get("seconds"), "s per minute of video": round(info.get("seconds", 0) / minutes, 2)
                     if minutes == minutes and minutes > 0 else None})
    return pd.DataFrame(rows).set_index("video") if rows else pd.DataFrame()


def run_features(run_dir: str | Path) -> pd.Series:
    """The pipeline a run trained with and, for whole videos, its feature store (path, videos, size)."""
    run = Path(run_dir)
    state = load_checkpoint(run / "last.pt")
    cfg = RunConfig.load(run / "config.json")
    out = {"run": str(run), "pipeline": state.get("pipeline", "windows"),
           "backbone fingerprint": state.get("backbone_fingerprint", ""), "feature width D": state.get("feature_dim")}
    store = Path(state.get("features") or "")
    if out["pipeline"] == "whole_video" and store.is_dir():
        files = list(store.glob("*.npy"))
        out.update({"feature store": str(store), "videos in the store": len(files),
                    "store MB": round(sum(f.stat().st_size for f in files) / 2**20, 1),
                    "dtype": FeatureStore(store).manifest().get("dtype", cfg.feature_dtype)})
    elif out["pipeline"] == "windows":
        out.update({"windows": f"train_T={cfg.train_T}, val_T={cfg.val_T}, stride={cfg.train_stride}",
                    "feature cache": "on" if cfg.feature_cache and cfg.freeze_backbone else "off"})
    return pd.Series(out, name="value", dtype=object)


def evaluation_note(result: dict) -> str:
    """Which split a score is on and what that means; classes the model never saw in training."""
    split, sel = result["split"], result.get("selection_split", "val")
    if result.get("on_selection_split"):
        text = (f"[warn] Scored on {split!r}, the split best.pt was chosen on: an optimistic score. Hold out a "
                "test split (test_fraction, or `test` rows in splits.csv) and evaluate split='test'.")
    elif split == "test":
        text = f"[info] Scored on 'test', held out: neither training nor the choice of best.pt ({sel}) saw it."
    else:
        text = f"[info] Scored on {split!r} ({result['checkpoint']}.pt; best.pt was chosen on {sel})."
    for task, counts in (result.get("unseen") or {}).items():
        text += (f"\n[warn] {task}: {sum(counts.values())} frames of classes no training video has "
                 f"({', '.join(counts)}): they count as errors")
    return text


def videos_to_label(videos: str, run_dir: str | Path) -> list[str]:
    """``videos`` (a file or folder; relative: from the project root), or when empty the videos of the
    run's held-out split (test, else val), which have labels to compare with (notebook 04)."""
    if str(videos):
        return [project_path(videos)]
    run = Path(run_dir)
    splits = read_json(run / "splits.json")
    split = "test" if splits.get("test") else "val"
    by_stem = {r.stem: r for r in run_records(RunConfig.load(run / "config.json"), output_dir=run.parent)}
    paths = [str(by_stem[s].video_path) for s in splits.get(split, []) if s in by_stem and by_stem[s].video_path]
    if not paths:
        raise FileNotFoundError(f"run {run} has no {split} videos to label: pass videos=<file or folder>")
    print(f"[info] No videos given: labelling the run's {split} videos ({len(paths)}), which 04 scores against "
          "their labels")
    return paths
