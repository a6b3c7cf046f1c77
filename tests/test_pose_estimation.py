"""``python -m kit poses``: real BlazePose keypoints from the shared videos, written next to (never over) a
user's pose files, resumable; and the one-line error without mediapipe.

The estimator runs in its own environment (requirements-poses.txt). Without one these tests skip, except in
CI, where ``.ci/run`` installs it and sets ``KIT_REQUIRE_POSES=1`` so a missing estimator fails instead.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kit.__main__ import main
from kit.data import load_records
from kit.data.pose_estimation import (BLAZEPOSE33_EDGES, BLAZEPOSE33_NAMES, PoseEstimatorMissing, estimate_poses,
                                      pose_python)


@pytest.fixture(scope="module")
def mediapipe_python() -> str:
    py = pose_python()
    ok = subprocess.run([py, "-c", "import mediapipe.python.solutions.pose"], capture_output=True).returncode == 0
    if not ok:
        if os.environ.get("KIT_REQUIRE_POSES"):
            pytest.fail(f"KIT_REQUIRE_POSES is set but {py} has no working mediapipe")
        pytest.skip("no mediapipe environment (requirements-poses.txt)")
    return py


def test_poses_written_for_videos_without_and_user_files_kept(shared_videos, tmp_path, mediapipe_python, capsys):
    root = tmp_path / "data"
    for sub in ("Videos", "Annotations", "Poses"):
        (root / sub).mkdir(parents=True)
    for name in ("rawvideo_part_0.mp4", "demo.mp4"):
        (root / "Videos" / name).symlink_to(shared_videos / name)
    (root / "Annotations" / "rawvideo_part_0.csv").write_text("start_frame,end_frame,action\n0,15,a\n16,31,b\n")
    mine = root / "Poses" / "demo.npy"  # a user's own pose file: must stay byte for byte
    np.save(mine, np.ones((280, 17, 3), np.float32))
    before = mine.read_bytes()
    (root / "Poses" / "rawvideo_part_0.npy.partial").write_bytes(b"left by a killed run")

    assert main(["poses", "--data_root", str(root), "--python", mediapipe_python]) == 0
    out = capsys.readouterr().out
    assert "demo: has demo.npy, left as it is" in out and "1 estimated" in out
    assert mine.read_bytes() == before
    assert not list((root / "Poses").glob("*.partial"))
    skeleton = json.loads((root / "Poses" / "skeleton.json").read_text())
    assert skeleton["joints"] == list(BLAZEPOSE33_NAMES) and len(skeleton["edges"]) == len(BLAZEPOSE33_EDGES)
    _check_keypoints(root / "Poses" / "rawvideo_part_0.npy", 32, 340, 256)
    # the data contract reads the file as the video's keypoints
    (rec,) = load_records(root, stems=["rawvideo_part_0"])
    assert rec.keypoints.shape == (32, 33, 3) and (rec.keypoints[:, :, 2] > 0).mean() > 0.5
    # a second run estimates nothing and changes nothing: resumable per video
    stamp = (root / "Poses" / "rawvideo_part_0.npy").stat().st_mtime_ns
    again = estimate_poses(root, python=mediapipe_python)
    assert all(d.skipped for d in again) and (root / "Poses" / "rawvideo_part_0.npy").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_poses_of_every_shared_video(shared_videos, tmp_path, mediapipe_python):
    root = tmp_path / "data"
    (root / "Videos").mkdir(parents=True)
    for p in shared_videos.iterdir():
        if p.suffix in (".mp4", ".avi") and p.name != "test.avi":  # test.avi shares test.mp4's stem
            (root / "Videos" / p.name).symlink_to(p)
    done = estimate_poses(root, python=mediapipe_python)
    assert [d.stem for d in done] == ["demo", "demo_skeleton", "rawvideo_part_0", "test"]
    sizes = {"demo": (280, 340, 256), "demo_skeleton": (72, 1920, 1080), "rawvideo_part_0": (32, 340, 256),
             "test": (300, 340, 256)}
    for d in done:
        _check_keypoints(d.path, *sizes[d.stem])


def _check_keypoints(path, n, w, h):
    kp = np.load(path)
    assert kp.shape == (n, 33, 3) and kp.dtype == np.float32
    found = np.isfinite(kp[:, 0, 0])
    assert found.mean() > 0.7, f"{path}: a person in only {found.sum()} of {n} frames"
    # confidently visible joints lie in the frame, in pixels (not normalised to [0, 1])
    vis = kp[found][kp[found][..., 2] > 0.8]
    assert len(vis) > 5 * found.sum() and vis[:, 2].max() <= 1.0
    inside = (vis[:, 0] >= 0) & (vis[:, 0] < w) & (vis[:, 1] >= 0) & (vis[:, 1] < h)
    # (BlazePose places some confident joints past the frame edge: 94.9 % inside was measured on one video)
    assert inside.mean() > 0.9 and (vis[:, 0] > 1).mean() > 0.99


def test_without_mediapipe_one_line_says_how_to_install(shared_videos, tmp_path, capsys):
    root = tmp_path / "data"
    (root / "Videos").mkdir(parents=True)
    (root / "Videos" / "a.mp4").symlink_to(shared_videos / "rawvideo_part_0.mp4")
    with pytest.raises(PoseEstimatorMissing, match="requirements-poses.txt"):
        estimate_poses(root, python=sys.executable if not _has_mp(sys.executable) else "/nonexistent/python")
    assert main(["poses", "--data_root", str(root), "--python", "/nonexistent/python"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot run /nonexistent/python") and "pip install" in err
    assert not (root / "Poses" / "a.npy").exists()


def test_two_videos_with_one_stem_are_refused(shared_videos, tmp_path):
    root = tmp_path / "data"
    (root / "Videos").mkdir(parents=True)
    (root / "Videos" / "test.mp4").symlink_to(shared_videos / "test.mp4")
    (root / "Videos" / "test.avi").symlink_to(shared_videos / "test.avi")
    with pytest.raises(Exception, match="share the stem 'test'"):
        estimate_poses(root, python="/nonexistent/python")


def _has_mp(py: str) -> bool:
    return subprocess.run([py, "-c", "import mediapipe.python.solutions.pose"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_notebook_01_estimates_and_draws_blazepose(shared_videos, tmp_path, mediapipe_python, monkeypatch):
    from test_notebooks import ROOT, papermill, text_of

    root = tmp_path / "data"
    for sub in ("Videos", "Annotations"):
        (root / sub).mkdir(parents=True)
    for stem in ("clip_a", "clip_b"):  # two videos: 01 checks that a split leaves one for validation
        (root / "Videos" / f"{stem}.mp4").symlink_to(shared_videos / "rawvideo_part_0.mp4")
        (root / "Annotations" / f"{stem}.csv").write_text("start_frame,end_frame,action\n0,15,a\n16,31,b\n")
    monkeypatch.setenv("KIT_POSE_PYTHON", mediapipe_python)
    nb = papermill("01_data_inspection", tmp_path / "01.ipynb", ROOT, data_root=root, output_dir=tmp_path / "out",
                   img_size=64, num_frames=4, poses_from_video=True)
    assert (root / "Poses" / "clip_a.npy").is_file() and "with_person" in text_of(nb)
    pose_cell = next(c for c in nb.cells if c.cell_type == "code" and "skeleton_edges(record" in c.source)
    assert any("image/png" in o.get("data", {}) for o in pose_cell.outputs)


def test_existing_pose_files_are_found_in_any_format_and_case(tmp_path):
    from kit.data.pose_estimation import _existing

    (tmp_path / "A.B.NPY").write_bytes(b"x")  # a stem with a dot, another case
    (tmp_path / "c.csv").write_text("x")  # another pose format
    (tmp_path / "d").mkdir()  # an OpenPose folder
    (tmp_path / "fDLC_resnet50_labJan1shuffle1_100.h5").write_bytes(b"x")  # DeepLabCut's naming
    (tmp_path / "e.npy.partial").write_bytes(b"x")  # a killed run's leftover: not a pose file
    found = [s for s in ("a.b", "c", "d", "e", "a", "f") if _existing(tmp_path, s) is not None]
    assert found == ["a.b", "c", "d", "f"]
