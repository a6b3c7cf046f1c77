"""Pose files as the tools write them: DeepLabCut, SLEAP, OpenPose, MMPose/COCO; skeletons; several individuals.

Each format is written by that tool's own library where it is installable (``movement`` writes
DeepLabCut tables and SLEAP analysis files, ``sleap-io`` writes ``.slp``) or exactly in the layout
its docs show (OpenPose, MMPose's demo), from the demo data's own poses; loading must give those poses back.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.data import load_records, validate
from kit.data.pose_formats import PoseOptions, builtin_skeleton
from kit.temporal.model import PoseGraphEncoder

STEMS = ("demo_000", "demo_001", "demo_002")
NAMES = builtin_skeleton("coco17").joints


def _dataset(demo_root: Path, root: Path, stems=STEMS) -> Path:
    """Videos and annotations of the demo data, with an empty Poses/."""
    for sub in ("Videos", "Annotations", "Poses"):
        (root / sub).mkdir(parents=True)
    for s in stems:
        shutil.copy(demo_root / "Videos" / f"{s}.mp4", root / "Videos")
        shutil.copy(demo_root / "Annotations" / f"{s}.csv", root / "Annotations")
    return root


def _original(demo_root: Path, stem: str) -> np.ndarray:
    """The demo's keypoints as the kit reads its own .npy: (L, 17, 3), missing joints 0, 0, 0."""
    return next(r for r in load_records(demo_root) if r.stem == stem).keypoints


def _movement_ds(kps: list[np.ndarray], names=("mouse1", "mouse2")):
    """A movement poses dataset of one or more (L, 17, 3) arrays (0-score joints -> NaN)."""
    from movement.io import load_poses

    pos = np.stack([np.where(k[..., 2:] > 0, k[..., :2], np.nan) for k in kps], -1)  # (L, J, 2, I)
    conf = np.stack([np.where(k[..., 2] > 0, k[..., 2], np.nan) for k in kps], -1)  # (L, J, I)
    return load_poses.from_numpy(pos.transpose(0, 2, 1, 3), conf, individual_names=list(names[:len(kps)]),
                                 keypoint_names=list(NAMES), source_software="DeepLabCut")


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_deeplabcut_single_animal_round_trip(demo_root, tmp_path, suffix):
    from movement.io import save_poses

    root = _dataset(demo_root, tmp_path / "d", STEMS[:1])
    kp = _original(demo_root, "demo_000")
    save_poses.to_dlc_file(_movement_ds([kp], ("individual_0",)),
                           root / "Poses" / f"demo_000DLC_resnet50_demoJan1shuffle1_1000{suffix}")
    (rec,) = load_records(root)
    assert rec.keypoints.shape == kp.shape
    np.testing.assert_allclose(rec.keypoints, kp, atol=1e-4)
    assert rec.skeleton.joints == NAMES


def test_deeplabcut_multi_animal_all_or_one_and_config_skeleton(demo_root, tmp_path):
    from movement.io import save_poses

    root = _dataset(demo_root, tmp_path / "d", STEMS[:1])
    kp = _original(demo_root, "demo_000")
    other = kp.copy()
    other[..., 0] = np.where(kp[..., 2] > 0, kp[..., 0] + 40, 0)
    path = root / "Poses" / "demo_000DLC_dlcrnetms5_demoJan1shuffle1_1000_el.csv"
    save_poses.to_dlc_file(_movement_ds([kp, other]), path, split_individuals=False)
    assert path.read_text().splitlines()[1].startswith("individuals,")  # DeepLabCut's multi-animal header
    (root / "Poses" / "config.yaml").write_text("skeleton:\n- [nose, left_eye]\n- [left_hip, left_knee]\n")
    (rec,) = load_records(root)
    assert rec.keypoints.shape == (len(kp), 34, 3)
    np.testing.assert_allclose(rec.keypoints[:, 17:], other, atol=1e-4)
    assert rec.skeleton.edges == ((0, 1), (11, 13)) and rec.skeleton.individuals == ("mouse1", "mouse2")
    from kit.results.inspect import skeleton_edges

    assert skeleton_edges(rec) == ((0, 1), (11, 13), (17, 18), (28, 30))  # drawn on both animals
    (one,) = load_records(root, pose_options=PoseOptions(individual="mouse2"))
    np.testing.assert_allclose(one.keypoints, other, atol=1e-4)
    with pytest.raises(Exception, match="no individual 'rat'"):
        load_records(root, pose_options=PoseOptions(individual="rat"))


def test_sleap_analysis_h5_and_slp_round_trip(demo_root, tmp_path):
    import sleap_io as sio

    root = _dataset(demo_root, tmp_path / "d", STEMS[:2])
    skel = sio.Skeleton(list(NAMES), edges=[(5, 7), (7, 9)])
    for stem, how in (("demo_000", "h5"), ("demo_001", "slp")):
        kp = _original(demo_root, stem)
        arr = np.where(kp[..., 2:] > 0, kp, np.nan)[:, None]  # (L, 1 track, J, 3)
        labels = sio.Labels.from_numpy(arr, videos=[sio.Video(filename=str(root / "Videos" / f"{stem}.mp4"),
                                                              open_backend=False)],
                                       skeletons=skel, tracks=[sio.Track("fly")], return_confidence=True)
        if how == "h5":  # SLEAP's own exporter, as sleap-io carries it: tracks stored column-major
            sio.save_analysis_h5(labels, str(root / "Poses" / f"labels.v001.000_{stem}.analysis.h5"))
        else:
            sio.save_slp(labels, str(root / "Poses" / f"{stem}.mp4.predictions.slp"))
    recs = load_records(root)
    for rec in recs:
        np.testing.assert_allclose(rec.keypoints, _original(demo_root, rec.stem), atol=1e-4)
        assert rec.skeleton.edges == ((5, 7), (7, 9)) and rec.skeleton.individuals == ("fly",)


def _openpose_frames(folder: Path, stem: str, kp: np.ndarray) -> list[int]:
    """OpenPose's --write_json output (doc/02_output.md): BODY_25, 0, 0, 0 for joints it did not find."""
    coco_to_body25 = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
    folder.mkdir(parents=True, exist_ok=True)
    for t, k in enumerate(kp):
        body = np.zeros((25, 3))
        body[coco_to_body25] = k
        people = [{"person_id": [-1], "pose_keypoints_2d": body.ravel().tolist(), "face_keypoints_2d": [],
                   "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}] if k[:, 2].any() else []
        (folder / f"{stem}_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return coco_to_body25


def test_openpose_folder_round_trip_and_missing_frame(demo_root, tmp_path):
    root = _dataset(demo_root, tmp_path / "d", STEMS[:1])
    kp = _original(demo_root, "demo_000")
    index = _openpose_frames(root / "Poses" / "demo_000", "demo_000", kp)
    (rec,) = load_records(root)
    assert rec.keypoints.shape == (len(kp), 25, 3) and rec.skeleton.source == "body25"
    np.testing.assert_allclose(rec.keypoints[:, index], kp, atol=1e-4)
    (root / "Poses" / "demo_000" / "demo_000_000000000007_keypoints.json").unlink()
    report = validate(root)
    assert len(report) == 1 and "demo_000_000000000007_keypoints.json" in report.problem[0]


def test_mmpose_demo_output_round_trip(demo_root, tmp_path):
    root = _dataset(demo_root, tmp_path / "d", STEMS[:1])
    kp = _original(demo_root, "demo_000")
    info = [{"frame_id": t + 1, "instances": [{"keypoints": k[:, :2].tolist(), "keypoint_scores": k[:, 2].tolist(),
                                               "bbox": [[0, 0, 10, 10]], "bbox_score": 0.9}]}
            for t, k in enumerate(kp) if k[:, 2].any()]  # the demo skips frames without a detection
    meta = {"dataset_name": "coco", "num_keypoints": 17, "keypoint_id2name": {str(i): n for i, n in enumerate(NAMES)},
            "skeleton_links": [[15, 13], [13, 11]]}
    (root / "Poses" / "results_demo_000.json").write_text(json.dumps({"meta_info": meta, "instance_info": info}))
    (rec,) = load_records(root)
    np.testing.assert_allclose(rec.keypoints, kp, atol=1e-5)
    assert rec.skeleton.edges == ((15, 13), (13, 11))


def test_coco_keypoints_written_by_sleap_io_round_trip(demo_root, tmp_path):
    import sleap_io as sio

    root = _dataset(demo_root, tmp_path / "d", STEMS[:1])
    kp = _original(demo_root, "demo_000")
    two = np.stack([kp, np.where(kp[..., 2:] > 0, kp + [30, 5, 0], 0)], 1)  # (L, 2, J, 3)
    arr = np.where(two[..., 2:] > 0, two, np.nan)
    arr[..., 2] = np.where(np.isnan(arr[..., 2]), np.nan, 1.0)  # COCO keeps visibility, not scores
    labels = sio.Labels.from_numpy(arr, videos=[sio.Video(filename=str(root / "Videos" / "demo_000.mp4"),
                                                          open_backend=False)],
                                   skeletons=sio.Skeleton(list(NAMES), edges=[(0, 1)]), return_confidence=True)
    sio.save_coco(labels, str(root / "Poses" / "demo_000.json"))
    (rec,) = load_records(root)
    want = np.where(two[..., 2:] > 0, np.concatenate([two[..., :2], np.ones_like(two[..., 2:])], -1), 0)
    np.testing.assert_allclose(rec.keypoints, want.reshape(len(kp), 34, 3), atol=1e-4)
    assert rec.skeleton.edges == ((0, 1),)


def test_skeleton_from_config_file_or_nearest_neighbours(demo_root, tmp_path):
    root = _dataset(demo_root, tmp_path / "d", STEMS[:1])
    kp = _original(demo_root, "demo_000")[:, :5]  # 5 unnamed joints: no built-in skeleton fits
    np.save(root / "Poses" / "demo_000.npy", kp)
    (rec,) = load_records(root)
    assert rec.skeleton.source == "nearest" and len(rec.skeleton.edges) >= 3
    assert any("nearest neighbour" in p for p in validate(root).problem)
    (tmp_path / "five.json").write_text(json.dumps({"joints": list(NAMES[:5]), "edges": [[0, 1], [0, 2]]}))
    (rec,) = load_records(root, pose_options=PoseOptions(skeleton=str(tmp_path / "five.json")))
    assert rec.skeleton.edges == ((0, 1), (0, 2)) and rec.skeleton.joints == NAMES[:5]
    report = validate(root, pose_options=PoseOptions(skeleton="body25"))
    assert "has 25 joints, the keypoints 5" in report.problem[0]


def test_min_score_makes_joints_missing(demo_root, tmp_path):
    root = _dataset(demo_root, tmp_path / "d", STEMS[:1])
    kp = _original(demo_root, "demo_000").copy()
    kp[:, 3, 2] = 0.1
    np.save(root / "Poses" / "demo_000.npy", kp)
    (rec,) = load_records(root, pose_options=PoseOptions(min_score=0.5))
    assert (rec.keypoints[:, 3] == 0).all() and (rec.keypoints[:, 0, 2] > 0).any()


def test_malformed_files_get_one_line_each(demo_root, tmp_path):
    import h5py

    root = _dataset(demo_root, tmp_path / "d", STEMS)
    (root / "Poses" / "demo_000DLC_x.csv").write_text("bodyparts,nose,nose\ncoords,x,y\n0,1,2\n")
    with h5py.File(root / "Poses" / "demo_001.analysis.h5", "w") as f:  # 2 tracks but 3 track names
        f["tracks"] = np.zeros((2, 2, 4, 278))
        f["node_names"] = np.array([b"a", b"b", b"c", b"d"])
        f["track_names"] = np.array([b"t1", b"t2", b"t3"])
    np.save(root / "Poses" / "ghost.npy", np.zeros((3, 17, 3)))
    np.save(root / "Poses" / "demo_002.npy", np.full(np.load(demo_root / "Poses" / "demo_002.npy").shape, np.nan))
    report = validate(root)
    by_file = {Path(f).name: p for f, p in zip(report.file, report.problem)}
    assert "header rows start ['bodyparts', 'coords'" in by_file["demo_000DLC_x.csv"]
    assert "track count changes" in by_file["demo_001.analysis.h5"]
    assert "match no video" in by_file["Poses"] and "ghost.npy" in by_file["Poses"]
    assert "no joint in any frame (all NaN" in by_file["demo_002.npy"]
    assert len(report) == 4


def test_pooling_over_individuals_ignores_their_order_and_absence():
    torch.manual_seed(0)
    enc = PoseGraphEncoder(17, 8, individuals=2).eval()
    a, b = torch.rand(1, 6, 17, 3) * 100, torch.rand(1, 6, 17, 3) * 100
    a[..., 2] = b[..., 2] = 1.0
    ab, ba = enc(torch.cat([a, b], 2)), enc(torch.cat([b, a], 2))
    torch.testing.assert_close(ab, ba)
    alone = enc(torch.cat([a, torch.zeros_like(b)], 2))  # the second individual absent: a alone
    three = PoseGraphEncoder(17, 8, individuals=2).eval()
    three.load_state_dict(enc.state_dict())
    torch.testing.assert_close(three(torch.cat([a, torch.zeros_like(b), torch.zeros_like(b)], 2)), alone)
    assert not torch.allclose(ab, alone)
    with pytest.raises(ValueError, match="expected keypoints"):
        enc(torch.rand(1, 6, 16, 3))


def test_multi_animal_deeplabcut_dataset_trains_and_evaluates(demo_root, tmp_path):
    from movement.io import save_poses

    from kit.config import RunConfig
    from kit.results.evaluate import evaluate
    from kit.temporal.train import fit

    root = _dataset(demo_root, tmp_path / "d", STEMS[:2])
    for i, stem in enumerate(STEMS[:2]):
        kp = _original(demo_root, stem)
        kps = [kp, np.where(kp[..., 2:] > 0, kp + [25, 0, 0], 0)][: 1 + (i > 0)]  # one file has one animal
        save_poses.to_dlc_file(_movement_ds(kps), root / "Poses" / f"{stem}DLC_dlcrnet.h5", split_individuals=False)
    cfg = RunConfig(data_root=str(root), backbone="tiny", img_size=32, epochs=1, batch_size=2, tcn_layers=2,
                    tcn_channels=16, pose_dim=16, val_fraction=0.5, test_fraction=0.0, output_dir=str(tmp_path / "o"),
                    run_name="dlc")
    run = fit(cfg).run_dir
    sk = json.loads((run / "skeleton.json").read_text())
    assert sk["individuals"] == ["mouse1", "mouse2"] and sk["joints"] == list(NAMES)
    metrics = evaluate(run, split="val")
    assert metrics is not None
    from kit.results.predict import predict

    res = predict(run, root / "Videos" / "demo_001.mp4", out=tmp_path / "p", poses=root / "Poses", progress=False)
    assert res.videos[0]["poses"] and not res.notes


def test_overlay_draws_the_skeleton_of_every_individual():
    from kit.results.overlay import draw_pose

    kp = np.array([[10, 10, 1], [30, 10, 1], [10, 40, 0], [50, 50, 1], [70, 50, 1], [70, 70, 0]], np.float32)
    img = draw_pose(np.zeros((100, 100, 3), np.uint8), kp, ((0, 1), (0, 2), (3, 4), (3, 5)))
    assert img[10, 20, 1] > 200 and img[50, 60, 1] > 200  # both individuals' edges, in green
    assert img[25, 10].sum() == 0 and img[60, 70].sum() == 0  # edges to missing joints are not drawn
    big = draw_pose(np.zeros((200, 200, 3), np.uint8), kp, ((0, 1),), scale=2)
    assert big[19:23, 40, 1].max() > 200 and big[8:12, 40].sum() == 0  # shown at twice the size: scaled with it
