"""Label new videos with a trained run: ``predict(run, paths)`` and ``python -m kit predict``.

The videos need no annotations and may be of any length. They go through exactly the path evaluation
takes (:class:`kit.temporal.trained.TrainedRun`): with a frozen backbone their features are extracted
once (streamed: a video is never held in memory whole) into the feature store beside the run, then
the temporal model labels every frame in one pass; the run's backbone is built only for videos
without current features, and refused when its fingerprint differs from the run's.

Per video, into ``out`` (default ``<run>/predict/``; see :mod:`kit.results.labelling` for the
columns; a multi-label task's behaviours ``<task>:<behaviour>`` each get a 0/1 decision at the run's
threshold, a ``_prob`` column, their own segments and barcode row, :mod:`kit.results.behaviour_view`): ``<stem>.csv`` per frame, ``<stem>.segments.csv``, ``<stem>.txt`` (MS-TCN's result format),
``<stem>.png`` (the barcode), with ``overlay`` ``<stem>.overlay.mp4``; and for all videos
``summary.csv`` (segments and time per class) and ``predict.json`` (the run, checkpoint, backbone and
what was written). A video whose outputs all exist from the same run and checkpoint is skipped: a
killed run resumes where it stopped. Outputs of another run or checkpoint in ``out`` are never
overwritten: choose another ``out``.

Keypoints: with ``poses=DIR`` each video's pose file (``<stem>.npy`` or a pose estimator's, docs/guides/poses.md,
read with the run's ``skeleton``, ``individual`` and ``pose_min_score``) feeds the pose branch. Without it they
are found where the data contract puts them (``<root>/Poses/`` beside ``<root>/Videos/``), and for the run's own
videos in the run's pose folder, so labelling the run's test videos gives the labels ``evaluate`` scores. A run
trained with poses labelling a video without keypoints gives its pose branch what training gave such videos
(nothing, masked): a warning says so and names the drop to expect, and ``predict.json`` keeps it.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kit.config import cli_path
from kit.data.inputs import video_records
from kit.config import resolve_path
from kit.data.pose_formats import PoseOptions
from kit.data.video import DataError, problem
from kit.files import read_json, write_json
from kit.results.inspect import skeleton_edges
from kit.results.behaviour_view import behaviour_columns, binary_view, binary_vocab
from kit.results.labelling import output_paths, outputs_done, summary_table, write_video_outputs
from kit.temporal.runs import latest_run
from kit.temporal.trained import TrainedRun

log = logging.getLogger("kit")


@dataclass
class PredictResult:
    """What :func:`predict` wrote: ``out``, one dict per video (``stem, path, frames, fps, seconds,
    skipped, poses, files``), the ``summary`` table and ``notes`` (things the user should know)."""

    out: Path
    videos: list[dict]
    summary: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def predict(run_dir: str | Path, videos, out: str | Path = "", checkpoint: str = "", poses: str | Path = "",
            overlay: bool = False, batch_size: int | None = None, device=None, progress: bool = True) -> PredictResult:
    """Labels every frame of every video and writes the outputs of the module docstring.

    Args:
        run_dir: a run folder (``""``: the newest run under ``outputs/``).
        videos: a video file or folder, or a list of them.
        out: output folder (default ``<run>/predict``).
        checkpoint: ``best`` or ``last``; ``""``: ``best`` when the run had validation videos, else
            ``last`` (as ``evaluate``).
        poses: folder of pose files (``<stem>.npy`` or a pose estimator's files, docs/guides/poses.md) for runs that use
            poses; ``""``: the data contract's ``Poses/`` beside each video's ``Videos/``, then the run's own.
        overlay: also write ``<stem>.overlay.mp4`` (H.264 where the installed encoders allow).
        batch_size: windows per forward pass (windowed runs only).
    """
    run = Path(run_dir) if str(run_dir) else latest_run()
    if not checkpoint:
        checkpoint = "best" if read_json(run / "splits.json").get("val") else "last"
    trained = TrainedRun(run, checkpoint, device)
    out = Path(out) if str(out) else run / "predict"
    paths = [videos] if isinstance(videos, (str, Path)) else list(videos)
    records = video_records(paths, poses, PoseOptions.of(trained.cfg),  # the run's skeleton, individual, min score
                            pose_dirs=_run_pose_dirs(trained, run, paths))
    _check_skeleton(trained, records)
    manifest = _claim(out, run, trained)
    notes = _pose_notes(trained, records, poses)
    for n in notes:
        log.warning(f"[warn] {n}")
    done = {r.stem for r in records if outputs_done(out, r.stem, overlay)}
    todo = [r for r in records if r.stem not in done]
    if done:
        log.info(f"[info] {len(done)} video(s) already labelled in {out} by this run: skipped")
    rows = []
    for r in records:  # one video at a time: bounded memory, and a killed run keeps what it finished
        if r.stem in done:
            rows.append(_row(r, out, overlay, seconds=0.0, skipped=True))
            continue
        t0 = time.perf_counter()
        pred = trained.predict([r], batch_size=batch_size, progress=progress)[0]
        probs, vocab = binary_view(pred.probs, trained.vocab, trained.multilabel, trained.thresholds)
        columns = behaviour_columns(pred.probs, trained.vocab, trained.multilabel, trained.thresholds)
        files = write_video_outputs(out, r.stem, probs, vocab, r.fps or 0.0, r.video_path, overlay, columns=columns,
                                    keypoints=r.keypoints, edges=skeleton_edges(r))  # the overlay draws the poses
        rows.append(_row(r, out, overlay, seconds=time.perf_counter() - t0, skipped=False, files=files))
        log.info(f"[info] {r.stem}: {r.num_frames} frames labelled in {rows[-1]['seconds']:.1f} s")
    segs = {row["stem"]: pd.read_csv(out / f"{row['stem']}.segments.csv", keep_default_na=False) for row in rows}
    summary = summary_table(segs, binary_vocab(trained.vocab, trained.multilabel))
    summary.to_csv(out / "summary.csv", index=False)
    manifest.update(videos=[{k: v for k, v in row.items() if k != "files"} | {"files": {k: str(p) for k, p in
                                                                                      row["files"].items()}}
                            for row in rows], notes=notes)
    write_json(out / "predict.json", manifest)
    log.info(f"[info] Labelled {len(todo)} video(s) ({len(done)} skipped) into {out}")
    return PredictResult(out, rows, summary, notes)


def _claim(out: Path, run: Path, trained: TrainedRun) -> dict:
    """The folder's manifest: ours (same run and checkpoint) to continue, or a new folder; else refuse."""
    want = {"run": str(run.resolve()), "checkpoint": trained.checkpoint, "epoch": trained.epoch,
            "backbone_fingerprint": trained.fingerprint, "pipeline": trained.pipeline}
    path = out / "predict.json"
    if path.is_file():
        have = read_json(path)
        if {k: have.get(k) for k in want} != want:
            raise FileExistsError(f"{out} holds predictions of another run or checkpoint ({have.get('run')}, "
                                  f"{have.get('checkpoint')}, epoch {have.get('epoch')}): pass another --out")
    elif out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty and holds no predict.json: pass an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, want | {"started": time.strftime("%Y-%m-%d %H:%M:%S %z")})
    return want


def _check_skeleton(trained: TrainedRun, records) -> None:
    """Keypoints must have the joints the run's pose graph was built on (and one individual unless it pools)."""
    sk = trained.skeleton
    if not sk or not any(k.startswith("pose.") for k in trained.state["model"]["head"]):
        return
    J, pools = len(sk["joints"]), len(sk.get("individuals", [""])) > 1
    bad = [problem(r.pose_path, f"{r.skeleton.num_joints} joints x {r.keypoints.shape[1] // r.skeleton.num_joints} "
                   f"individual(s); the run was trained on {J} joints"
                   + ("" if pools else " of one individual"),
                   "pass the poses of the same estimator/skeleton" + ("" if pools else " or set individual= in the "
                                                                      "run's config")) for r in records
           if r.keypoints is not None and r.skeleton is not None
           and (r.skeleton.num_joints != J or (not pools and r.keypoints.shape[1] != J))]
    if bad:
        raise DataError.of(bad)


def _run_pose_dirs(trained: TrainedRun, run: Path, paths) -> list[Path]:
    """The run's own pose folder, for videos that sit in the run's own video folder (else none)."""
    cfg = trained.cfg
    if cfg.dataset_format == "mstcn" or not cfg.use_pose:
        return []
    root = run.parent / "demo_data" if cfg.uses_demo_data else resolve_path(cfg.data_root or ".")  # as run_records
    videos = resolve_path(cfg.videos) if cfg.videos else root / "Videos"
    poses = resolve_path(cfg.poses) if cfg.poses else root / "Poses"
    given = [Path(p).resolve() for p in paths]
    mine = any(p == videos.resolve() or p.parent == videos.resolve() for p in given)
    return [poses] if mine and poses.is_dir() else []


def _pose_notes(trained: TrainedRun, records, poses) -> list[str]:
    uses = any(k.startswith("pose.") for k in trained.state["model"]["head"])  # the run has a pose branch
    missing = [r.stem for r in records if r.keypoints is None]
    if not (uses and missing):
        return []
    val = read_json(trained.run / "metrics.json").get("val_action_acc") if (trained.run / "metrics.json").is_file() \
        else None
    score = f" (its validation action accuracy, with keypoints: {val:.1f} %)" if isinstance(val, (int, float)) else ""
    return [f"the run was trained with keypoints, but {len(missing)} video(s) have none ({', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}): its pose branch adds nothing for them, so expect labels far "
            f"below the run's scores{score}; on the demo data, test videos labelled without their keypoints "
            "scored 5-18 % action accuracy instead of 82-99 %. Put <video>.npy in <root>/Poses beside "
            "<root>/Videos, or pass poses=DIR" + ("" if str(poses) else " (no poses given, none found)")]


def _row(r, out: Path, overlay: bool, seconds: float, skipped: bool, files: dict | None = None) -> dict:
    files = files or {k: p for k, p in output_paths(out, r.stem, overlay).items() if p.exists()}
    return {"stem": r.stem, "path": str(r.video_path), "frames": r.num_frames, "fps": r.fps, "seconds": seconds,
            "skipped": skipped, "poses": str(r.pose_path) if r.keypoints is not None and r.pose_path else "",
            "files": files}


# --- for people ------------------------------------------------------------------------------
def videos_table(result: PredictResult) -> pd.DataFrame:
    """One row per labelled video: frames, fps, seconds it took (rounded), skipped, its pose file."""
    df = pd.DataFrame(result.videos).drop(columns=["files", "path"]).set_index("stem")
    return df.round({"fps": 2, "seconds": 1})


def output_files(result: PredictResult) -> pd.DataFrame:
    """Every file :func:`predict` wrote, with its full path, what it is, and its size (KiB)."""
    what = {"frames": "per-frame labels and probabilities", "segments": "segments per task",
            "mstcn": "action labels, MS-TCN's result format", "barcode": "barcode figure",
            "overlay": "video with the labels drawn on it"}
    rows = [(v["stem"], what.get(kind, kind), str(Path(p).resolve())) for v in result.videos
            for kind, p in v["files"].items()]
    rows += [("(all)", "time per class", str((result.out / "summary.csv").resolve())),
             ("(all)", "run, checkpoint, videos, notes", str((result.out / "predict.json").resolve()))]
    df = pd.DataFrame(rows, columns=["video", "what", "path"])
    df["KiB"] = [round(Path(p).stat().st_size / 1024, 1) if Path(p).is_file() else None for p in df["path"]]
    return df


# --- command line -------------------------------------------------------------------------
def main_predict(argv: list[str] | None = None) -> int:
    """``python -m kit predict --run RUN PATH [PATH ...] [--checkpoint best] [--out DIR] [--overlay]``."""
    ap = argparse.ArgumentParser(prog="python -m kit predict", description="Label every frame of new videos with a "
                                 "trained run: per-frame CSV, segments, MS-TCN result file, barcode, overlay video.")
    ap.add_argument("paths", nargs="+", type=cli_path, help="video files or folders of videos")
    ap.add_argument("--run", default="", type=cli_path, help="run folder (default: the newest run under ./outputs)")
    ap.add_argument("--checkpoint", default="", choices=("", "best", "last"),
                    help="best | last (default: best when the run had validation videos, else last)")
    ap.add_argument("--out", default="", type=cli_path, help="output folder (default: <run>/predict)")
    ap.add_argument("--poses", default="", type=cli_path, help="folder of pose files (<video>.npy, DeepLabCut, SLEAP, "
                    "OpenPose, MMPose), for runs that use poses (default: <root>/Poses beside videos in <root>/Videos, "
                    "and the run's own for its videos)")
    ap.add_argument("--overlay", action="store_true", help="also write <video>.overlay.mp4, the annotated video")
    ap.add_argument("--batch_size", type=int, default=None, help="windows per forward pass (windowed runs)")
    args = ap.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        ap.error(f"--batch_size must be >= 1, got {args.batch_size}")
    run = args.run or latest_run(cli_path("outputs"))  # the newest run under ./outputs, as evaluate
    res = predict(run, args.paths, args.out, args.checkpoint, args.poses, args.overlay, args.batch_size)
    cols = ["stem", "frames", "fps", "seconds", "skipped", "poses"]
    print(pd.DataFrame(res.videos)[cols].to_string(index=False))
    print(f"\nwrote {res.out}/<video>.{{csv,segments.csv,txt,png{',overlay.mp4' if args.overlay else ''}}}, "
          "summary.csv, predict.json")
    return 0
