"""kit.results.predict: new videos (no annotations) labelled with a trained run, the way evaluate labels."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.data.video import probe_video
from kit.results.predict import predict

pytest_plugins = ["fixtures_run"]
ROOT = Path(__file__).resolve().parents[1]


def test_real_videos_get_every_output(trained_run, shared_videos, tmp_path):
    res = predict(trained_run, shared_videos, out=tmp_path / "pred", progress=False)
    names = sorted(v["stem"] for v in res.videos)
    assert names == ["demo", "demo_skeleton", "rawvideo_part_0", "test_avi", "test_mp4"]  # test.avi / test.mp4 kept apart
    vocab = json.loads((trained_run / "labels.json").read_text())
    for v in res.videos:
        n = probe_video(v["path"]).num_frames
        table = pd.read_csv(tmp_path / "pred" / f"{v['stem']}.csv", keep_default_na=False)
        assert len(table) == n == v["frames"] and list(table.columns[:2]) == ["frame", "time_s"]
        assert set(table["action"]) <= set(vocab["action"])
        segs = pd.read_csv(tmp_path / "pred" / f"{v['stem']}.segments.csv", keep_default_na=False)
        action = segs[segs.task == "action"]
        assert action.start_frame.iloc[0] == 0 and action.end_frame.iloc[-1] == n - 1  # segments tile the video
        txt = (tmp_path / "pred" / f"{v['stem']}.txt").read_text().split("\n")
        assert txt[0] == "### Frame level recognition: ###" and len(txt[1].split()) == n
        assert (tmp_path / "pred" / f"{v['stem']}.png").stat().st_size > 0
    summary = pd.read_csv(tmp_path / "pred" / "summary.csv", keep_default_na=False)
    assert set(summary.task) == set(vocab) and summary[summary.task == "action"].frames.sum() == sum(
        v["frames"] for v in res.videos)
    manifest = json.loads((tmp_path / "pred" / "predict.json").read_text())
    assert manifest["run"] == str(trained_run.resolve()) and manifest["checkpoint"] == "best"
    # the run used poses and these videos have none: a warning naming the drop to expect
    assert any("trained with keypoints, but 5 video(s) have none" in n and "expect labels far below" in n
               for n in manifest["notes"])


def test_a_demo_video_gets_the_labels_evaluate_gave_it(trained_run, demo_root, tmp_path):
    """The same code path as evaluation: identical per-frame predictions, annotations or not."""
    from kit.results.evaluate import evaluate

    evaluate(trained_run, split="val", checkpoint="best")
    stem = json.loads((trained_run / "splits.json").read_text())["val"][0]
    res = predict(trained_run, demo_root / "Videos" / f"{stem}.mp4", out=tmp_path / "p", poses=demo_root / "Poses",
                  progress=False)
    assert res.videos[0]["poses"] and not res.notes  # keypoints given: the pose branch is used
    ours = pd.read_csv(tmp_path / "p" / f"{stem}.csv", keep_default_na=False)
    # no poses given: the data contract's Poses/ beside Videos/ is found, and the labels are the same
    found = predict(trained_run, demo_root / "Videos" / f"{stem}.mp4", out=tmp_path / "p2", progress=False)
    assert found.videos[0]["poses"] == str(demo_root / "Poses" / f"{stem}.npy") and not found.notes
    assert (pd.read_csv(tmp_path / "p2" / f"{stem}.csv", keep_default_na=False) == ours).all().all()
    theirs = pd.read_csv(trained_run / "predictions" / f"{stem}.csv", keep_default_na=False)
    for task in ("action", "stance"):
        assert (ours[task] == theirs[f"{task}_pred"]).all()
        np.testing.assert_allclose(ours[f"{task}_prob"], theirs[f"{task}_conf"], atol=1e-3)


def test_resumes_per_video_and_never_mixes_runs(trained_run, demo_root, tmp_path):
    out = tmp_path / "p"
    videos = sorted((demo_root / "Videos").glob("*.mp4"))[:2]
    predict(trained_run, videos[:1], out=out, progress=False)
    first = (out / f"{videos[0].stem}.csv").stat().st_mtime_ns
    res = predict(trained_run, videos, out=out, progress=False)  # the first is done: kept, the second labelled
    assert [v["skipped"] for v in res.videos] == [True, False]
    assert (out / f"{videos[0].stem}.csv").stat().st_mtime_ns == first
    with pytest.raises(FileExistsError, match="another run or checkpoint"):
        predict(trained_run, videos, out=out, checkpoint="last", progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    with pytest.raises(FileExistsError, match="not empty"):
        predict(trained_run, videos, out=tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "a user's file"


def test_cli_with_overlay_on_an_avi_with_b_frames(trained_run, shared_videos, tmp_path):
    video = tmp_path / "clip.avi"
    shutil.copy(shared_videos / "test.avi", video)
    proc = subprocess.run([sys.executable, "-m", "kit", "predict", "--run", str(trained_run), str(video), "--out",
                           str(tmp_path / "o"), "--overlay"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "clip" in proc.stdout and "summary.csv" in proc.stdout
    overlay = next((tmp_path / "o").glob("clip.overlay.*"))
    src, out = probe_video(video), probe_video(overlay)
    assert out.num_frames == src.num_frames and out.fps == pytest.approx(src.fps, rel=1e-3)


def test_bad_paths_name_the_file(trained_run, tmp_path):
    from kit.data.video import DataError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video"):
        predict(trained_run, tmp_path / "empty", out=tmp_path / "o", progress=False)
    with pytest.raises(DataError, match="missing.mp4.*no such file"):
        predict(trained_run, tmp_path / "missing.mp4", out=tmp_path / "o", progress=False)
