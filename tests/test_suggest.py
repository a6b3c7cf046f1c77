"""What to label next: the uncertainty measures on known probabilities, and the ranking of a trained
run's demo videos (the one it gets most wrong above the one it gets most right)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kit.__main__ import main
from kit.data import load_records
from kit.results.suggest import COLUMNS, suggest, uncertainty
from kit.temporal.trained import TrainedRun

pytest_plugins = ["fixtures_run"]


def test_uncertainty_of_sure_tied_and_changed_frames():
    sure, tie = [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]
    last = np.array([sure, tie, [1 / 3] * 3])  # (L=3, K=3)
    first = np.array([[0.0, 1.0, 0.0], tie, [1 / 3] * 3])  # stage 1 picked another class on frame 0
    u = uncertainty({"action": np.stack([first, last])})  # (S=2, L, K)
    assert u["entropy"] == pytest.approx([0, np.log(2) / np.log(3), 1])
    assert u["margin"] == pytest.approx([0, 1, 1])
    assert u["disagreement"] == pytest.approx([1, 0, 0])
    one = uncertainty({"action": last[None], "stance": np.array([[[1.0, 0.0]]] * 3).transpose(1, 0, 2)})
    assert np.isnan(one["disagreement"]).all() and one["margin"] == pytest.approx([0, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"\(S, L, K\)"):
        uncertainty({"action": last})


def test_ranks_the_video_the_model_gets_wrong_above_the_one_it_gets_right(trained_run, demo_root, tmp_path):
    records = load_records(demo_root)
    acc = {}
    for p in TrainedRun(trained_run).predict(records):
        m = p.labels["action"] >= 0
        acc[p.stem] = float((p.pred("action")[m] == p.labels["action"][m]).mean())
    wrong, right = min(acc, key=acc.get), max(acc, key=acc.get)
    assert acc[right] - acc[wrong] > 0.1, acc  # the demo run really does get one worse than another
    out = tmp_path / "s.csv"
    assert main(["suggest", "--run", str(trained_run), str(demo_root / "Videos"), "--poses", str(demo_root / "Poses"),
                 "--top", "5", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS
    videos = table[table["kind"] == "video"].set_index("video")
    assert sorted(videos.index) == sorted(acc)
    assert videos.loc[wrong, "rank"] < videos.loc[right, "rank"], (videos[["rank", "score"]], acc)
    stretches = table[table["kind"] == "stretch"]
    assert len(stretches) == 5 and stretches["score"].is_monotonic_decreasing
    assert stretches["reason"].str.contains("entropy").all() and stretches["reason"].str.contains("stages").all()


def test_default_candidates_are_the_unlabeled_frames_of_the_training_videos(trained_run):
    table = suggest(trained_run, top=3)
    train = TrainedRun(trained_run).splits["train"]
    assert set(table["video"]) <= set(train)
    # the demo's odd videos leave `stance` empty on their first 4 frames: only those count
    videos = table[table["kind"] == "video"]
    assert (videos["frames"] == 4).all() and len(videos) == len([s for s in train if int(s[-1]) % 2 == 1])
