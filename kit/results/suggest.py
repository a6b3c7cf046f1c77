"""What to label next: videos and stretches ranked by how unsure a trained run is about them.

``suggest(run)`` / ``python -m kit suggest --run RUN [PATH ...] [--poses DIR]`` runs the model on
candidate videos and scores every unlabeled frame by three measures of uncertainty, each in ``[0, 1]`` and averaged
over the run's tasks:

- ``entropy``: entropy of the class probabilities over ``log K`` (1 = uniform, 0 = one class sure).
- ``margin``: ``1 - (p1 - p2)``, one minus the gap between the two most probable classes (1 = a tie).
  Entropy and margin follow the usual active-learning scores (A-SOiD and DLC2Action rank by the
  model's confidence the same way); margin catches two-way confusions entropy dilutes over K.
- ``disagreement``: half the L1 distance between an earlier MS-TCN stage's probabilities and the
  last stage's, averaged over earlier stages (0 = the refinement changed nothing, 1 = it moved all
  the mass). ``NaN`` for runs on windows and single-stage models, which give one stage only.

``score`` is the mean of the measures available. Candidates: the given videos (every frame counts as
unlabeled), else the run's training videos, where only the frames their annotation leaves empty
count (a frame is unlabeled when any task's cell is empty: ``label a little`` = a CSV of empty
cells). Rows, highest score first within each kind:

    kind       video (mean over its unlabeled frames) | stretch (``stretch_s`` seconds, disjoint)
    video      the stem;  path: the video file
    start_frame, end_frame (inclusive), start_s, end_s, frames (unlabeled ones in the row)
    score, entropy, margin, disagreement, reason (which measure is highest and on which task/classes)

Legend: ``S`` stages, ``L`` frames, ``K`` classes of a task.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.data.dataset import run_records
from kit.data.inputs import video_records
from kit.temporal.runs import latest_run
from kit.temporal.sequences import SequenceDataset, collate_sequences
from kit.temporal.trained import TrainedRun

log = logging.getLogger("kit")

__all__ = ["suggest", "uncertainty", "stage_probs", "draft_prediction", "main_suggest"]

COLUMNS = ["rank", "kind", "video", "start_frame", "end_frame", "start_s", "end_s", "frames", "score", "entropy",
           "margin", "disagreement", "reason", "path"]


def uncertainty(stages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame ``entropy``, ``margin``, ``disagreement`` (each mean over tasks) and the ``top_task``.

    Shapes:
        stages: ``{task: (S, L, K)}`` probabilities of every stage (the last is the prediction).
        returns: ``{"entropy", "margin", "disagreement": (L,) float64, "top_task": (L,) int}``;
        ``disagreement`` is NaN with one stage.
    """
    ent, mar, dis = [], [], []
    for task, p in stages.items():
        if p.ndim != 3:
            raise ValueError(f"stages[{task!r}] must be (S, L, K), got shape {p.shape}")
        last = p[-1].astype(np.float64)  # (L, K)
        K = last.shape[1]
        h = -(last * np.log(np.clip(last, 1e-12, 1))).sum(1) / np.log(max(K, 2))  # (L,)
        top2 = np.sort(last, 1)[:, -2:] if K > 1 else np.stack([np.zeros(len(last)), last[:, 0]], 1)  # (L, 2)
        ent.append(h)
        mar.append(1 - (top2[:, 1] - top2[:, 0]))
        dis.append(0.5 * np.abs(p[:-1] - p[-1:]).sum(-1).mean(0) if len(p) > 1 else np.full(len(last), np.nan))
    ent, mar, dis = np.stack(ent), np.stack(mar), np.stack(dis)  # (tasks, L)
    return {"entropy": ent.mean(0), "margin": mar.mean(0), "disagreement": dis.mean(0),
            "top_task": np.argmax(ent + mar, 0)}


@torch.no_grad()
def stage_probs(trained: TrainedRun, records) -> list[dict[str, np.ndarray]]:
    """Every stage's probabilities per video at full frame rate: ``[{task: (S, L, K)}]``.

    Whole-video runs give each MS-TCN stage (as :func:`kit.temporal.sequences.predict_sequences`,
    which keeps only the last); runs on windows give their one prediction (``S = 1``).
    """
    if trained.pipeline != "whole_video":
        return [{t: p[None] for t, p in pred.probs.items()} for pred in trained.predict(records)]
    model, sr = trained.model(), trained.cfg.sample_rate
    ds = SequenceDataset(records, trained.vocab, trained.features_of(records), sample_rate=sr,
                         num_joints=trained.num_joints)
    out = []
    for i, rec in enumerate(records):
        b = collate_sequences([ds[i]])
        stages = model(b["feats"].to(trained.device), b["pose"].to(trained.device), b["mask"].to(trained.device),
                       b["has_pose"].to(trained.device))  # S x {task: (1, L', K)}
        out.append({t: np.repeat(np.stack([torch.softmax(s[t][0].float(), -1).cpu().numpy() for s in stages]),
                                 sr, axis=1)[:, :rec.num_frames] for t in model.tasks})  # (S, L, K)
    return out


def _reason(row: dict, task: str, classes: tuple[str, str] | None) -> str:
    parts = {"entropy": f"entropy {row['entropy']:.2f}", "margin": f"margin {1 - row['margin']:.2f} between "
             f"{classes[0]} and {classes[1]}" if classes else f"margin {1 - row['margin']:.2f}",
             "disagreement": f"stages disagree on {100 * row['disagreement']:.0f}% of the probability"}
    have = {k: row[k] for k in parts if np.isfinite(row[k])}
    top = max(have, key=have.get)
    return f"{task}: " + "; ".join([parts[top]] + [parts[k] for k in have if k != top])


def suggest(run_dir: str | Path = "", videos=None, stretch_s: float = 2.0, top: int = 20, checkpoint: str = "best",
            poses: str | Path = "", device=None) -> pd.DataFrame:
    """Ranks candidate videos and stretches by uncertainty (see the module docstring).

    Args:
        run_dir: the run (``""``: the newest under ``outputs/``).
        videos: video files or folders to rank (all their frames unlabeled); None: the run's training
            videos, their unlabeled frames only.
        stretch_s: length of a stretch in seconds.
        top: stretches kept (all videos are kept).
        checkpoint: ``best`` or ``last``.
        poses: with ``videos``, the folder of their ``<stem>.npy`` keypoints (a run trained with poses
            is unsure of everything without them, so the ranking would say nothing).

    Returns:
        the table of the module docstring (columns ``COLUMNS``).
    """
    run = Path(run_dir) if str(run_dir) else latest_run()
    trained = TrainedRun(run, checkpoint, device)
    if videos is None:
        records = run_records(trained.cfg, output_dir=run.parent, stems=trained.splits.get("train"))
    else:
        records = video_records([videos] if isinstance(videos, (str, Path)) else list(videos), poses)
    tasks = trained.tasks
    rows = []
    for rec, stages in zip(records, stage_probs(trained, records)):
        u = uncertainty(stages)
        free = np.zeros(rec.num_frames, bool)  # (L,) frames some task has no label for
        for t in tasks:
            free |= np.asarray(rec.labels[t], dtype=object) == "" if rec.labels.get(t) else True
        if not free.any():
            continue
        fps = rec.fps or 25.0
        n = max(1, int(round(stretch_s * fps)))
        spans = [("video", 0, rec.num_frames - 1)] + [("stretch", a, min(a + n, rec.num_frames) - 1)
                                                     for a in range(0, rec.num_frames, n)]
        for kind, a, b in spans:
            sel = np.flatnonzero(free[a:b + 1]) + a
            if kind == "stretch" and len(sel) < 0.5 * (b - a + 1):
                continue  # mostly labelled already
            row = {k: float(np.nanmean(u[k][sel])) if np.isfinite(u[k][sel]).any() else np.nan
                   for k in ("entropy", "margin", "disagreement")}
            row["score"] = float(np.nanmean([row["entropy"], row["margin"], row["disagreement"]]))
            task = tasks[int(np.bincount(u["top_task"][sel], minlength=len(tasks)).argmax())]
            mean_p = stages[task][-1][sel].mean(0)  # (K,)
            pair = tuple(trained.vocab[task][k] for k in np.argsort(mean_p)[::-1][:2]) if len(mean_p) > 1 else None
            rows.append(dict(kind=kind, video=rec.stem, start_frame=a, end_frame=b, start_s=a / fps,
                             end_s=(b + 1) / fps, frames=len(sel), **row, reason=_reason(row, task, pair),
                             path=str(rec.video_path)))
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    if table.empty:
        log.info("[info] suggest: no unlabeled frames in the candidates")
        return pd.DataFrame(columns=COLUMNS)
    table["order"] = table["kind"].map({"video": 0, "stretch": 1})
    table = table.sort_values(["order", "score"], ascending=[True, False], kind="stable").drop(columns="order")
    table = pd.concat([table[table["kind"] == "video"], table[table["kind"] == "stretch"].head(top)])
    table.insert(0, "rank", table.groupby("kind").cumcount() + 1)
    return table.reset_index(drop=True)


def draft_prediction(run_dir: str | Path, data_root: str | Path, stem: str) -> Path:
    """The run's labels of ``<data_root>/Videos/<stem>.*`` (``predict`` into ``<run>/predict``, with
    ``<data_root>/Poses`` when there), to open as a draft: ``Annotator.open(root, stem, prediction=...)``."""
    from kit.results.annotator import find_video
    from kit.results.predict import predict

    poses = Path(data_root) / "Poses"
    res = predict(run_dir, find_video(data_root, stem), poses=poses if poses.is_dir() else "", progress=False)
    return res.out / f"{res.videos[0]['stem']}.csv"


def main_suggest(argv: list[str] | None = None) -> int:
    """``python -m kit suggest --run RUN [PATH ...] [--stretch_s 2] [--top 20] [--out FILE]``."""
    ap = argparse.ArgumentParser(prog="python -m kit suggest", description="Rank videos and stretches to label "
                                 "next by the model's uncertainty (entropy, margin, disagreement between stages).")
    ap.add_argument("paths", nargs="*", help="videos or folders to rank (default: the run's training videos, "
                    "their unlabeled frames)")
    ap.add_argument("--run", default="", help="run folder (default: the newest run under outputs/)")
    ap.add_argument("--checkpoint", default="best", choices=("best", "last"), help="default: best")
    ap.add_argument("--stretch_s", type=float, default=2.0, help="length of a ranked stretch in seconds (default 2)")
    ap.add_argument("--top", type=int, default=20, help="stretches listed (default 20; every video is listed)")
    ap.add_argument("--poses", default="", help="folder of <video>.npy keypoints of the PATHs, for runs that use poses")
    ap.add_argument("--out", default="", help="also write the table to this CSV")
    args = ap.parse_args(argv)
    if args.stretch_s <= 0 or args.top < 1:
        ap.error(f"--stretch_s must be > 0 and --top >= 1, got {args.stretch_s}, {args.top}")
    table = suggest(args.run, args.paths or None, args.stretch_s, args.top, args.checkpoint, args.poses)
    if args.out:
        table.to_csv(args.out, index=False)
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(table.drop(columns="path").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
