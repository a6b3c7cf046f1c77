"""Looking at data and backbones: the tables and widgets of notebooks 01 and 02.

The notebooks stay thin (a few calls per cell); what they would otherwise compute inline lives
here, where it is tested (``kit.results.report`` does the same for runs, notebooks 03 and 04):

- data (01): :func:`dataset_root`, :func:`dataset_summary`, :func:`class_counts`,
  :func:`window_frames`, :func:`keypoints_at`, :func:`frame_view`, :func:`frame_scrubber`;
- backbone (02): :func:`backbone_choice`, :func:`shape_walkthrough`, :func:`sampling_slider`
  (its time and memory: :func:`kit.results.profiling.time_forward`);
- both: :func:`project_path` (relative paths from the project root, wherever the kernel runs).

Widgets are plain ipywidgets: they work in JupyterLab and never break a headless (papermill)
run; the notebooks draw a static figure next to each one for executed copies.

Legend: ``B`` batch, ``T`` frames in a window, ``S`` decoded frames, ``F`` frames per clip,
``C`` clips per window, ``T'`` token time steps, ``h, w`` patch grid, ``N = h*w``, ``D`` width,
``K`` feature time points, ``J`` joints, ``L`` frames in a video.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.features.backbones import Backbone
from kit.config import RunConfig, resolve_path
from kit.data import COCO17_EDGES, VideoRecord, read_frames
from kit.data.resize import Resize  # noqa: F401  (a type in a signature)
from kit.data.demo import demo_root
from kit.data.windows import Window, uniform_indices

__all__ = ["project_path", "dataset_root", "dataset_summary", "class_counts", "window_frames", "keypoints_at",
           "skeleton_edges",
           "frame_view", "frame_scrubber", "backbone_choice", "default_device", "shape_walkthrough",
           "sampling_slider"]

DEMO_NOTE = "synthetic stick figures: the numbers show that the pipeline works, not how good a model is"
TINY_NOTE = "Its weights are RANDOM: a smoke test of the pipeline that runs anywhere, not a model"


# --- paths --------------------------------------------------------------------------------------
def project_path(path: str | Path) -> str:
    """``""`` stays ``""`` (= not given); a relative path is taken from the project root.

    So ``data_root="data/mine"`` means the same folder whether a notebook runs from ``notebooks/``
    (JupyterLab) or from the repository root (``papermill notebooks/...``).
    """
    return str(resolve_path(path)) if str(path) else ""


def dataset_root(data_root: str | Path = "", output_dir: str | Path = "outputs") -> Path:
    """The data folder to look at: ``data_root``, or the demo data (generated when absent).

    The demo data lives in ``<output_dir>/demo_data``, where training and evaluation find it too.
    Prints which one is used.
    """
    if str(data_root):
        root = Path(project_path(data_root))
        print(f"[info] Data: {root}")
        return root
    root = demo_root(resolve_path(output_dir))
    print(f"[info] No data_root given: using the embedded DEMO data in {root} ({DEMO_NOTE}). "
          "Pass data_root (papermill: -p data_root /path/to/data) to use your own.")
    return root


# --- the dataset at a glance ----------------------------------------------------------------------
def _runs(labels) -> list[tuple[str, int]]:
    """Runs of equal labels as ``(label, length)``, unlabeled ("") runs included."""
    out: list[tuple[str, int]] = []
    for lab in labels:
        if out and out[-1][0] == lab:
            out[-1] = (lab, out[-1][1] + 1)
        else:
            out.append((lab, 1))
    return out


def _split_of(splits: dict | None) -> dict[str, str]:
    return {r.stem: name for name, recs in (splits or {}).items() for r in recs}


def _pose_shape(r: VideoRecord) -> dict:
    """Joints of one individual and the number of individuals of a record's keypoints (0, 0: none)."""
    if r.keypoints is None:
        return {"joints": 0, "individuals": 0}
    J = r.skeleton.num_joints if r.skeleton else int(r.keypoints.shape[1])
    return {"joints": J, "individuals": int(r.keypoints.shape[1]) // J}


def dataset_summary(records: list[VideoRecord], splits: dict[str, list[VideoRecord]] | None = None) -> pd.DataFrame:
    """One row per video: split, frames, fps, seconds, resolution, joints, individuals, and per task the
    number of labelled segments and of unlabeled frames. A last row ``total`` sums the counts."""
    split = _split_of(splits)
    rows = []
    for r in records:
        row = {"video": r.stem, "split": split.get(r.stem, ""), "frames": r.num_frames, "fps": round(r.fps, 2),
               "seconds": round(r.num_frames / r.fps, 1) if r.fps else float("nan"),
               "resolution": f"{r.width}x{r.height}",
               **_pose_shape(r)}
        for task, labels in r.labels.items():
            row[f"{task} segments"] = sum(1 for lab, _ in _runs(labels) if lab)
            row[f"{task} unlabeled"] = sum(1 for lab in labels if not lab)
        rows.append(row)
    df = pd.DataFrame(rows).set_index("video")
    total = {c: df[c].sum() if c == "frames" or c.endswith((" segments", " unlabeled")) else "" for c in df}
    total.update(split=f"{len(df)} videos", seconds=round(float(df["seconds"].sum()), 1))
    return pd.concat([df.astype(object), pd.DataFrame([total], index=["total"], dtype=object)])


def class_counts(records: list[VideoRecord], splits: dict[str, list[VideoRecord]] | None = None) -> pd.DataFrame:
    """Per task and class: labelled frames, their share of the task (%), segments, mean segment
    length (frames) and videos it occurs in; with ``splits``, frames per split as well."""
    split = _split_of(splits)
    stats: dict[tuple[str, str], dict] = {}
    for r in records:
        for task, labels in r.labels.items():
            for lab, n in _runs(labels):
                if not lab:
                    continue
                s = stats.setdefault((task, lab), {"frames": 0, "segments": 0, "videos": set()})
                s["frames"] += n
                s["segments"] += 1
                s["videos"].add(r.stem)
                if split:
                    s[split.get(r.stem, "")] = s.get(split.get(r.stem, ""), 0) + n
    rows = []
    for (task, lab), s in sorted(stats.items()):
        rows.append({"task": task, "class": lab, "frames": s["frames"], "segments": s["segments"],
                     "mean length": round(s["frames"] / s["segments"], 1), "videos": len(s["videos"]),
                     **{k: s.get(k, 0) for k in (splits or {})}})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df.insert(3, "share %", (100 * df["frames"] / df.groupby("task")["frames"].transform("sum")).round(1))
    return df.set_index(["task", "class"])


# --- frames, poses and the scrubber ---------------------------------------------------------------
def window_frames(record: VideoRecord, T: int, start: int = 0, img_size: "int | Resize" = 224,
                  positions: str | torch.Tensor = "uniform", num_frames: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames a window of ``T`` frames from ``start`` gives a backbone, as training decodes them.

    Args:
        img_size: the geometry: a backbone's ``resize`` (what it receives), or an int ``n`` to stretch
            frames to ``n x n``.
        positions: ``"uniform"`` (``num_frames`` spread over the window, the seed's sampling),
            ``"all"`` (every frame of the window) or window positions ``(S,)``, e.g.
            ``backbone.sample_positions(T)``.

    Returns:
        frames ``(S, 3, size, size)`` uint8 and their absolute frame indices ``(S,)``;
        positions past the end of the video read its last frame (the padding rule of
        ``kit.data.WindowDataset``).
    """
    if not 0 <= start < record.num_frames:
        raise ValueError(f"{record.stem}: window start {start} outside the video's frames 0..{record.num_frames - 1}")
    if isinstance(positions, str):
        if positions not in ("uniform", "all"):
            raise ValueError(f"positions must be 'uniform', 'all' or window positions, got {positions!r}")
        pos = uniform_indices(T, num_frames) if positions == "uniform" else torch.arange(T)
    else:
        pos = torch.as_tensor(positions).long()
    indices = Window(0, start, T).decoded(pos, record.num_frames)  # (S,)
    return read_frames(record.video_path, indices, img_size), indices


def keypoints_at(record: VideoRecord, indices) -> np.ndarray:
    """Keypoints ``(S, J, 3)`` of the given frames; all zeros (nothing drawn) without poses."""
    idx = np.asarray(torch.as_tensor(indices).long())
    if record.keypoints is None:
        return np.zeros((len(idx), 17, 3), np.float32)
    return record.keypoints[idx]


def skeleton_edges(record: VideoRecord) -> tuple[tuple[int, int], ...]:
    """The edges to draw for a record's keypoints: its skeleton's, repeated for every individual
    (COCO-17 for records without a skeleton)."""
    if record.skeleton is None or record.keypoints is None:
        return COCO17_EDGES
    return record.skeleton.drawing_edges(record.keypoints.shape[1])


def frame_view(record: VideoRecord, frame: int, img_size: int = 256):
    """One frame with its pose drawn on it and its labels in the title. Returns a Figure."""
    from kit.results.input_view import pose_frames

    frame = int(np.clip(frame, 0, record.num_frames - 1))
    img = read_frames(record.video_path, [frame], img_size)  # (1, 3, H, W)
    fig = pose_frames(img, keypoints_at(record, [frame]), [frame], edges=skeleton_edges(record),
                      video_size=(record.width, record.height), ncols=1)
    fig.set_size_inches(4, 4.4)
    labels = ", ".join(f"{t}={v[frame] or '(unlabeled)'}" for t, v in record.labels.items())
    fig.axes[0].set_title(f"{record.stem} frame {frame}/{record.num_frames - 1}\n{labels}", fontsize="small")
    return fig


def frame_scrubber(record: VideoRecord, img_size: int = 256, frame: int = 0):
    """An ipywidgets slider over the frames of a video showing :func:`frame_view` (frame, labels,
    pose). Display it; in a headless run it is inert (the notebook adds a static frame_view)."""
    import ipywidgets as widgets
    from IPython.display import display

    slider = widgets.IntSlider(value=frame, min=0, max=record.num_frames - 1, description="frame",
                               continuous_update=False, layout=widgets.Layout(width="90%"))
    out = widgets.Output()

    def show(_=None):
        out.clear_output(wait=True)
        with out:
            display(frame_view(record, slider.value, img_size))

    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, out])


# --- the backbone ------------------------------------------------------------------------------
def backbone_choice(cfg: RunConfig) -> str:
    """Which backbone a config asks for, and why, in words (before loading it)."""
    name = cfg.resolved_backbone
    if name == "tiny":
        why = ("because backbone='' and no data is given: the demo data runs with the tiny backbone"
               if not cfg.backbone else "as asked (backbone='tiny')")
        return f"[info] Backbone: tiny, {why}. {TINY_NOTE}."
    src = f"folder {cfg.backbone_path}" if cfg.backbone_path else cfg.model_id
    if name == "auto":
        why = "because backbone='' with your data means auto" if not cfg.backbone else "as asked (backbone='auto')"
        return (f"[info] Backbone: auto, {why}: the original script's chain. VideoMAE {src} (folder, then the local "
                "Hugging Face cache, then the hub when online), else a timm 2D ViT, else an error listing "
                "what was tried. The log lines below say which one loaded.")
    if name == "videomae":
        return f"[info] Backbone: videomae from {src}, no fallback (backbone='videomae')."
    if name == "hf":
        return (f"[info] Backbone: hf from {src}: its family (VideoMAE, V-JEPA 2, TimeSformer, ViViT, VideoPrism) "
                "read from its config.json, its own processor's preprocessing; no fallback (backbone='hf').")
    return "[info] Backbone: vit2d, a timm 2D ViT embedding each sampled frame (backbone='vit2d')."


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _mode(backbone: Backbone, mode: str) -> Backbone:
    """The same backbone (shared weights) in another visual mode; the original is untouched."""
    view = copy.copy(backbone)
    view.mode = mode
    return view


def _shape(x) -> str:
    return "(" + ", ".join(str(int(s)) for s in x) + ")"


@torch.no_grad()
def shape_walkthrough(backbone: Backbone, video: torch.Tensor, modes: tuple[str, ...] = ("clip", "tokens")) -> pd.DataFrame:
    """The shapes from frames to per-frame features, step by step, per visual mode and path.

    Every shape is measured by running the backbone (inference, no gradients), not computed. The
    window rows are the windowed path (``train_T`` frames); the "whole video" rows treat the same
    frames as a whole video, the way extraction does (clips tiling it, one pass).

    Shapes:
        video ``(B, T, 3, img, img)`` uint8 -> rows: one clip's frames ``(B, F, 3, img, img)``,
        pixel_values (normalised, same shape), token grid ``(B, T', N, D)`` = ``(B, T', h, w, D)``,
        then per mode: window embed ``(B, C*K, D)`` and per-frame ``(B, T, D)``; whole-video clip
        vectors ``(C, K, D)`` and per-frame ``(L, D)``.
    """
    if video.ndim != 5:
        raise ValueError(f"video must be (B, T, 3, H, W), got shape {tuple(video.shape)}")
    B, T = video.shape[:2]
    Fr, (Tp, h, w) = backbone.num_frames, backbone.token_grid
    first = backbone.sample_positions(T)[:Fr]
    clip = video[:, first]  # (B, F, 3, img, img)
    pixels = backbone.preprocess(clip)  # (B, F, 3, img, img) normalised
    tokens = backbone.tokens(video)  # (B, T', N, D)
    D = tokens.shape[-1]
    grid = tokens.reshape(B, Tp, h, w, D)  # (B, T', h, w, D)
    rows = [("frames", video.shape, f"{T} frames decoded at {backbone.img_size} px ({backbone.resize.mode}: "
                                    f"{backbone.processor or 'the backbone geometry'})"),
            ("one clip", clip.shape, f"{Fr} frames every {backbone.frame_step}: a clip spans {backbone.span} frames"),
            ("pixel_values", pixels.shape, "scaled to [0, 1], normalised with the checkpoint's mean/std"),
            ("token grid", grid.shape, f"{Tp} time steps (tubelet {backbone.tubelet}) x {h}x{w} patches of width {D}"
                                       + (", each frame alone" if backbone.tubelet == 1 else ""))]
    pooling = {"clip": f"one vector per clip: {backbone.encoder.pooling}",
               "tokens": f"one vector per time step: {backbone.encoder.pooling}"}
    for mode in modes:
        view = _mode(backbone, mode)
        pos = view.sample_positions(T)
        emb = view.embed(video[:, pos])  # (B, C*K, D)
        feats = view.to_frames(emb, T)  # (B, T, D)
        C = view.num_clips(T)
        how = (f"the original script: {Fr} frames uniform over the window" if mode == "clip"
               else f"{C} clip(s) of {backbone.span} frames tiling the window")
        rows.append((f"{mode}, window: frames decoded", (B, len(pos), *video.shape[2:]), how))
        rows.append((f"{mode}, window: embed", emb.shape, pooling[mode]))
        rows.append((f"{mode}, window: per-frame", feats.shape, "expanded to every frame" if mode == "clip"
                     else f"{emb.shape[1]} points interpolated to {T} frames"))
        starts = view.clip_starts(T)
        pts = torch.stack([view.embed_clips(video[:1, view.clip_frames(s, T)])[0] for s in starts])  # (C, K, D)
        per_frame = view.spread(pts, T)  # (L, D)
        rows.append((f"{mode}, whole video: clip vectors", pts.shape, f"{len(starts)} clips tiling {T} frames"))
        rows.append((f"{mode}, whole video: per-frame", per_frame.shape, "stored transposed as features/<video>.npy "
                     "(D, L)"))
    return pd.DataFrame([(s, _shape(sh), what) for s, sh, what in rows], columns=["step", "shape", "what"])


def sampling_slider(backbone: Backbone, T: int = 180, max_T: int = 600):
    """An ipywidgets slider over the window length ``T`` showing which frames the backbone decodes
    (``kit.results.input_view.sampling_positions`` of ``backbone.sample_positions(T)``)."""
    import ipywidgets as widgets
    from IPython.display import display

    from kit.results.input_view import sampling_positions

    lo = backbone.num_frames
    slider = widgets.IntSlider(value=int(np.clip(T, lo, max_T)), min=lo, max=max(max_T, lo), description="T",
                               continuous_update=False, layout=widgets.Layout(width="90%"))
    out = widgets.Output()

    def show(_=None):
        out.clear_output(wait=True)
        with out:
            display(sampling_positions(slider.value, positions=backbone.sample_positions(slider.value)))

    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, out])
