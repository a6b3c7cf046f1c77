"""The embedded demo dataset: a rendered stick figure, in the kit's data contract.

Each video shows one COCO-17 stick figure, facing the camera, on a noisy background. It performs
a sequence of segments with the actions ``idle``, ``walk_left``, ``walk_right``, ``jump`` and
``wave``. ``walk_left`` and ``walk_right`` draw the *same* body pose at every frame (the legs and
arms swing identically); only the direction the figure drifts in differs, so no single frame can
tell them apart: a model has to use motion. The figure wraps around the frame edges so that its
position says nothing about its direction either. A second per-frame label, ``stance``
(standing | crouching | airborne), gives the multi-task heads something to learn that cuts across
actions (only jumps leave the ground, and they crouch before and after).

With ``multilabel=True`` (``python -m kit demo-data --multilabel``) the annotations gain a
multi-label task ``behaviour`` (``docs/guides/labels.md``) whose behaviours overlap: ``moving`` (walking
or jumping), ``arms_up`` (waving, or both arms up in the air during a jump: ``moving|arms_up``)
and the rare ``scratch`` (the right hand at the head for 3-4 frames once per video, under 2 % of
the frames, over whatever else the figure does). Videos and poses are those of the plain demo
except for the scratching frames; frames with none of the behaviours hold ``-``.

Layout written by :func:`make_demo_data` (see ``kit.data`` for the contract)::

    <out>/Videos/demo_000.mp4        size x size px, 25 fps, 150-300 frames (mp4v)
    <out>/Annotations/demo_000.csv   frame,action,stance[,behaviour]   (every 2nd video: stance
                                     empty for its first 4 frames, to exercise unlabeled frames)
    <out>/Poses/demo_000.npy         (N, 17, 3) float32 x, y, score in pixels; small noise and a
                                     few NaN joints, like a real pose estimator. x is tracked
                                     continuously, so it leaves 0..size where the drawing wraps
    <out>/splits.csv                 video,split: train / val / test
    <out>/.kit-demo                  written first: {"generator": "kit.data.demo", ...}; marks the
                                     folder as the kit's own, so it may be regenerated
    <out>/.complete                  written last; its absence means "generate again"

The kit writes only into a folder that is new, empty, or marked as its own (``.kit-demo``; demo
folders of earlier versions are recognised by their ``.complete``): never over a user's dataset.

Everything derives from ``seed``: the CSV and npy files are byte-identical between runs and the
videos decode to the same pixels.

Legend: ``N`` frames in a video, ``J`` = 17 COCO joints.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from kit.config import cli_path
from kit.data.poses import COCO17_EDGES as EDGES
from kit.errors import ConfigError, KitError

ACTIONS = ("idle", "walk_left", "walk_right", "jump", "wave")
BEHAVIOURS = ("arms_up", "moving", "scratch")  # the multi-label demo's task `behaviour`; scratch is rare
STANCES = ("standing", "crouching", "airborne")
FPS = 25.0
JUMP_PERIOD = 20  # frames per jump: 5 crouch, 10 airborne, 5 landing crouch
WALK_PERIOD = 16  # frames per stride
MARKER = ".complete"
OWNER = ".kit-demo"  # written first: this folder is the kit's demo dataset
OWNER_TEXT = json.dumps({"generator": "kit.data.demo", "contents": "synthetic demo dataset; regenerated "
                         "freely by the kit (python -m kit demo-data)"}) + "\n"


class DemoFolderError(KitError, FileExistsError):
    """The target folder holds files the kit did not generate."""

# Rest pose in figure units: x right (image right = the figure's left, it faces us), y up from the
# feet, height about 1. Joint order is COCO: nose, eyes (l, r), ears (l, r), shoulders, elbows,
# wrists, hips, knees, ankles.
_REST = np.array([
    [0.0, 0.90], [0.03, 0.93], [-0.03, 0.93], [0.06, 0.91], [-0.06, 0.91],
    [0.13, 0.80], [-0.13, 0.80], [0.17, 0.62], [-0.17, 0.62], [0.19, 0.45], [-0.19, 0.45],
    [0.08, 0.50], [-0.08, 0.50], [0.09, 0.25], [-0.09, 0.25], [0.09, 0.0], [-0.09, 0.0],
], dtype=np.float64)


def body_pose(action: str, t: int) -> tuple[np.ndarray, str]:
    """The figure's pose ``(17, 2)`` in figure units at frame ``t`` of a segment, and its stance.

    Depends on ``action`` only through the body: ``walk_left`` and ``walk_right`` return the same
    pose (the direction of travel is applied by the renderer).
    """
    p = _REST.copy()
    stance = "standing"
    if action == "idle":
        p[:11, 1] += 0.006 * np.sin(2 * np.pi * t / 40)  # breathing
    elif action in ("walk_left", "walk_right"):
        phi = 2 * np.pi * t / WALK_PERIOD
        for knee, ankle, wrist, s in ((13, 15, 10, np.sin(phi)), (14, 16, 9, -np.sin(phi))):
            lift = max(0.0, s)
            p[knee, 1] += 0.10 * lift
            p[ankle, 1] += 0.15 * lift
            p[wrist, 1] += 0.05 * s  # arms swing against the legs
        p[:, 1] += 0.015 * abs(np.sin(phi))  # body bob
    elif action == "jump":
        c = t % JUMP_PERIOD
        if c < 5 or c >= 15:  # crouch before take-off and after landing
            d = 0.08 * np.sin(np.pi * ((c if c < 5 else c - 15) + 0.5) / 5)
            p[:13, 1] -= d
            p[13:15, 1] -= d / 2
            p[13:15, 0] *= 1 + 3 * d  # knees bend outward
            stance = "crouching"
        else:
            h = 0.25 * np.sin(np.pi * (c - 4) / 11)
            p[13:17, 1] += 0.06  # legs tucked
            p[7:9] = [[0.20, 0.95], [-0.20, 0.95]]  # arms up
            p[9:11] = [[0.22, 1.10], [-0.22, 1.10]]
            p[:, 1] += h
            stance = "airborne"
    elif action == "wave":
        p[7] = [0.26, 0.86]  # one arm raised, the hand swinging side to side
        p[9] = [0.26 + 0.08 * np.sin(2 * np.pi * t / 10), 1.05]
    else:
        raise ValueError(f"unknown demo action {action!r}; expected one of {ACTIONS}")
    return p, stance


def _segments(rng: np.random.Generator, n: int) -> list[tuple[str, int]]:
    """Segments ``(action, length)`` filling ``n`` frames: every action once, then random ones."""
    k = max(len(ACTIONS), n // 36)
    lengths = 20 + rng.multinomial(n - 20 * k, np.full(k, 1 / k))
    order = list(rng.permutation(len(ACTIONS)))
    while len(order) < k:  # no action twice in a row
        order.append(rng.choice([a for a in range(len(ACTIONS)) if a != order[-1]]))
    return [(ACTIONS[a], int(m)) for a, m in zip(order, lengths)]


def behaviours_of(action: str, stance: str, scratching: bool) -> str:
    """The multi-label demo's ``behaviour`` cell of a frame: ``moving|arms_up``, ``scratch``, ``-`` ..."""
    on = {"arms_up": action == "wave" or stance == "airborne", "moving": action in ("walk_left", "walk_right", "jump"),
          "scratch": scratching}
    return "|".join(b for b in BEHAVIOURS if on[b]) or "-"


def _render_video(rng: np.random.Generator, size: int, rare: np.random.Generator | None = None):
    """Frames (BGR, uint8), true keypoints ``(N, 17, 2)`` in pixels and per-frame labels.

    With ``rare`` (the multi-label demo) the figure scratches its head once, at frames drawn from
    ``rare``; the last list returned says which frames. ``rng``'s draws are the same either way.
    """
    n = int(rng.integers(150, 301))
    scale = size * rng.uniform(0.40, 0.48)  # figure height in pixels
    ground = size * rng.uniform(0.86, 0.92)
    speed = rng.uniform(1.2, 2.0) * size / 128  # px per frame while walking
    x = rng.uniform(0, size)
    colour = tuple(int(c) for c in rng.integers(170, 256, 3))
    thick = max(1, round(size / 64))
    # A static textured background plus a few frames of sensor-like noise cycled over time.
    bg = rng.normal(rng.uniform(70, 140), 14, (size, size, 3))
    bg = cv2.GaussianBlur(bg, (0, 0), 1.5)
    noise = rng.normal(0, 5, (7, size, size, 3))
    frames, joints, actions, stances = [], np.zeros((n, 17, 2)), [], []
    itch = (-1, -1) if rare is None else (int(rare.integers(10, n - 10)), 0)
    itch = (itch[0], itch[0] + (int(rare.integers(3, 5)) if rare is not None else 0))  # [start, end) frames
    f = 0
    for action, length in _segments(rng, n):
        for t in range(length):
            if action == "walk_left":
                x -= speed
            elif action == "walk_right":
                x += speed
            pose, stance = body_pose(action, t)
            if itch[0] <= f < itch[1]:  # right hand at the head
                pose[8], pose[10] = [-0.18, 0.78], [-0.05, 0.93]
            joints[f, :, 0] = x + pose[:, 0] * scale  # (17,) pixel columns
            joints[f, :, 1] = ground - pose[:, 1] * scale  # image y points down
            img = np.clip(bg + noise[f % len(noise)], 0, 255).astype(np.uint8)
            wrap = x % size - x  # drawn wrapped around the frame edges, tracked without jumps
            for shift in (wrap - size, wrap, wrap + size):
                _draw(img, joints[f] + [shift, 0], colour, thick, scale)
            frames.append(img)
            actions.append(action)
            stances.append(stance)
            f += 1
    return frames, joints, actions, stances, [itch[0] <= f < itch[1] for f in range(n)]


def _draw(img: np.ndarray, kp: np.ndarray, colour: tuple, thick: int, scale: float) -> None:
    pts = np.round(kp * 16).astype(np.int32)  # 4 fractional bits: sub-pixel, smooth motion
    for a, b in EDGES[:12]:
        cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, thick, cv2.LINE_AA, shift=4)
    head = (pts[1] + pts[2]) // 2
    cv2.circle(img, tuple(head), int(0.07 * scale * 16), colour, -1, cv2.LINE_AA, shift=4)


def _split_of(i: int, n: int) -> str:
    if n >= 2 and i == n - 1 and n < 5:
        return "val"  # tiny datasets still get a validation video
    return "test" if i % 6 == 5 else "val" if i % 6 == 4 else "train"


def make_demo_data(out: str | Path, num_videos: int = 12, seed: int = 0, size: int = 128,
                   multilabel: bool = False) -> Path:
    """Writes the demo dataset to ``out`` (about 0.1 s per video) and returns ``out``.

    ``out`` must be new, empty or an earlier demo dataset (:func:`is_demo_folder`): anything else
    raises :class:`DemoFolderError` before a byte is written. Only the dataset's own files
    (``demo_*``, ``splits.csv`` and the markers) are written or replaced; other files in an
    earlier demo folder are left alone.

    Args:
        out: target folder, created if needed.
        num_videos: videos to render; with 12, 8 train, 2 val and 2 test.
        seed: everything (lengths, segments, colours, noise) derives from it.
        size: frame width and height in pixels.
        multilabel: add the multi-label task ``behaviour`` (overlapping, one rare; module docstring).
    """
    if num_videos < 1 or size < 32:
        raise ConfigError(f"demo data needs num_videos >= 1 and size >= 32 pixels (the figure must fit), got "
                          f"num_videos={num_videos}, size={size}: pass e.g. --num_videos 12 --size 128")
    out = Path(out)
    check_demo_target(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / OWNER).is_file():
        (out / OWNER).write_text(OWNER_TEXT)  # first: a generation cut short is still recognisably ours
    (out / MARKER).unlink(missing_ok=True)
    for sub in ("Videos", "Annotations", "Poses"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob("demo_*"):  # a previous, maybe larger, demo set
            old.unlink()
    rows = ["video,split"]
    for i in range(num_videos):
        stem = f"demo_{i:03d}"
        rng = np.random.default_rng([seed, i])
        frames, joints, actions, stances, itch = _render_video(
            rng, size, np.random.default_rng([seed, i, 1]) if multilabel else None)
        writer = cv2.VideoWriter(str(out / "Videos" / f"{stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                 FPS, (size, size))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write mp4v video here; reinstall opencv-python-headless")
        for img in frames:
            writer.write(img)
        writer.release()
        if i % 2 == 1:
            stances[:4] = [""] * 4  # unlabeled frames: ignored by the loss and the metrics
        csv = ["frame,action,stance"] + [f"{f},{a},{s}" for f, (a, s) in enumerate(zip(actions, stances))]
        if multilabel:
            csv = [csv[0] + ",behaviour"] + [f"{row},{behaviours_of(a, s, x)}" for row, a, s, x in
                                             zip(csv[1:], actions, stances, itch)]
        (out / "Annotations" / f"{stem}.csv").write_text("\n".join(csv) + "\n")
        kp = np.concatenate([joints + rng.normal(0, 0.6, joints.shape),
                             rng.uniform(0.75, 1.0, joints.shape[:2] + (1,))], axis=-1)  # (N, 17, 3)
        kp[rng.random(kp.shape[:2]) < 0.004] = np.nan  # joints the "estimator" missed
        np.save(out / "Poses" / f"{stem}.npy", kp.astype(np.float32))
        rows.append(f"{stem},{_split_of(i, num_videos)}")
    (out / "splits.csv").write_text("\n".join(rows) + "\n")
    meta = dict(num_videos=num_videos, seed=seed, size=size) | ({"multilabel": True} if multilabel else {})
    (out / MARKER).write_text(json.dumps(meta) + "\n")
    return out


def is_demo_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder the kit generated: its ``.kit-demo`` marker, or the ``.complete``
    marker of an earlier kit version (exactly ``{"num_videos", "seed", "size"}``)."""
    path = Path(path)
    try:
        if json.loads((path / OWNER).read_text()).get("generator") == "kit.data.demo":
            return True
    except (OSError, ValueError, AttributeError):
        pass
    try:
        return set(json.loads((path / MARKER).read_text())) == {"num_videos", "seed", "size"}
    except (OSError, ValueError, TypeError):
        return False


def check_demo_target(out: Path) -> None:
    """Raises :class:`DemoFolderError` unless ``out`` is absent, an empty folder or the kit's demo folder."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DemoFolderError(f"{out} is a file: the demo dataset needs a folder; pass a new folder to --out")
    if is_demo_folder(out):
        return
    entries = sorted(p.name for p in out.iterdir())
    if entries:
        shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise DemoFolderError(f"{out} is not empty ({shown}) and was not generated by the kit (no {OWNER} marker): "
                              "writing the demo dataset there could replace your files (splits.csv, Videos/...). "
                              "Pass a new or empty folder to --out")


def demo_root(output_dir: str | Path = "outputs", num_videos: int = 12, seed: int = 0) -> Path:
    """``<output_dir>/demo_data``, generated first when absent or incomplete (no marker file)."""
    root = Path(output_dir) / "demo_data"
    marker = root / MARKER
    want = dict(num_videos=num_videos, seed=seed, size=128)
    try:
        ok = json.loads(marker.read_text()) == want
    except (OSError, ValueError):
        ok = False
    if not ok:
        make_demo_data(root, num_videos=num_videos, seed=seed)
    return root


def main_demo(argv: list[str] | None = None) -> int:
    """``python -m kit demo-data --out DIR [--num_videos 12] [--seed 0] [--size 128]``; returns 0."""
    ap = argparse.ArgumentParser(prog="python -m kit demo-data",
                                 description="Write the synthetic stick-figure demo dataset.")
    ap.add_argument("--out", default="outputs/demo_data", type=cli_path, help="target folder")
    ap.add_argument("--num_videos", "--num-videos", type=int, default=12, help="videos to render")
    ap.add_argument("--seed", type=int, default=0, help="seed of everything in the dataset")
    ap.add_argument("--size", type=int, default=128, help="frame width and height in pixels")
    ap.add_argument("--multilabel", action="store_true", help="add the multi-label task `behaviour`: moving, "
                    "arms_up and the rare scratch, which overlap (docs/guides/labels.md)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = make_demo_data(args.out, num_videos=args.num_videos, seed=args.seed, size=args.size,
                         multilabel=args.multilabel)
    print(f"[info] Wrote {args.num_videos} demo videos to {out} in {time.perf_counter() - t0:.1f} s")
    return 0
