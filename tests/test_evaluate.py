"""kit.results.evaluate on a short trained tiny run: every frame predicted, files written, CLI, errors."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.data import load_records
from kit.results.evaluate import METRICS, evaluate, format_table

pytest_plugins = ["fixtures_run"]
ROOT = Path(__file__).resolve().parents[1]


def split_records(run: Path, split: str):
    cfg = json.loads((run / "config.json").read_text())
    stems = json.loads((run / "splits.json").read_text())[split]
    recs = {r.stem: r for r in load_records(cfg["data_root"])}
    return [recs[s] for s in stems]


def check_result(res: dict, run: Path, split: str, checkpoint: str) -> None:
    vocab = json.loads((run / "labels.json").read_text())
    recs = split_records(run, split)
    assert res["split"] == split and res["checkpoint"] == checkpoint
    assert res["videos"] == len(recs) >= 1
    assert res["frames"] == sum(r.num_frames for r in recs)
    for task, names in vocab.items():
        m = res[task]
        for k in METRICS:
            assert 0.0 <= m[k] <= 100.0, (task, k, m[k])
        assert m["labels"] == names
        cm = np.array(m["confusion"])
        assert cm.shape == (len(names), len(names))
        labelled = sum(sum(lab != "" for lab in r.labels[task]) for r in recs)
        assert cm.sum() == labelled  # every labelled frame counted once
        assert math.isclose(m["acc"], 100.0 * np.trace(cm) / cm.sum(), abs_tol=1e-3)
        assert set(m["per_class"]) >= set(names)
    # every frame of every video has a prediction, and the ground truth is the annotation
    for r in recs:
        df = pd.read_csv(run / "predictions" / f"{r.stem}.csv", keep_default_na=False)
        assert len(df) == r.num_frames
        assert df["frame"].tolist() == list(range(r.num_frames))
        for task, names in vocab.items():
            assert df[f"{task}_true"].tolist() == list(r.labels[task])
            assert set(df[f"{task}_pred"]) <= set(names)  # a class for every frame, none empty
            conf = df[f"{task}_conf"].to_numpy(float)
            assert np.isfinite(conf).all() and (conf >= 1.0 / len(names) - 1e-3).all() and (conf <= 1).all()


def test_evaluate_val_best(trained_run):
    res = json.loads((trained_run / "eval_val.json").read_text())  # written by the fixture
    check_result(res, trained_run, "val", "best")
    assert set(res) >= {"action", "stance", "videos", "frames", "checkpoint", "split"}
    assert res["on_selection_split"] is True and res["selection_split"] == "val"  # optimistic, and says so
    # the best checkpoint reproduces the validation scores training logged for its epoch
    logged = json.loads((trained_run / "metrics.json").read_text())
    assert res["epoch"] == logged["epoch"]
    for k in ("acc", "edit", "f1@50"):
        assert res["action"][k] == pytest.approx(logged[f"val_action_{k}"], abs=1e-3)


def test_evaluate_last_checkpoint_of_the_newest_run(trained_run):
    res = evaluate(None, split="test", checkpoint="last", output_dir=trained_run.parent)  # None: newest run
    check_result(res, trained_run, "test", "last")
    assert res["on_selection_split"] is False  # nothing was chosen on the test videos
    assert res["epoch"] == 2  # epochs completed: numbered from 1
    assert json.loads((trained_run / "eval_test.json").read_text()) == res


def test_bad_split_and_checkpoint(trained_run):
    with pytest.raises(ValueError, match=r"no videos in split 'nope'.*train \(4 videos\).*val") as e:
        evaluate(trained_run, split="nope")
    assert str(trained_run) in str(e.value)
    with pytest.raises(ValueError, match="checkpoint must be one of"):
        evaluate(trained_run, checkpoint="middle")
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        evaluate(trained_run / "predictions")
    from kit.__main__ import main
    assert main(["evaluate", "--run", str(trained_run), "--split", "nope"]) == 1  # through the CLI's error handling


def test_cli(trained_run):
    stored = {p: p.stat().st_mtime_ns for p in (trained_run.parent / "features").rglob("*.npy")}
    assert stored  # training extracted every video's features (val and test included)
    proc = subprocess.run([sys.executable, "-m", "kit", "evaluate", "--run", str(trained_run), "--split", "val"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((trained_run / "eval_val.json").read_text())
    assert format_table(res) in proc.stdout
    assert "action" in proc.stdout and "f1@50" in proc.stdout and "videos=1" in proc.stdout
    assert "optimistic" in proc.stdout  # val is the split best.pt was chosen on: said so
    assert "Using the tiny backbone" not in proc.stderr  # features read from the store: no backbone built
    assert {p: p.stat().st_mtime_ns for p in (trained_run.parent / "features").rglob("*.npy")} == stored


def test_format_table_marks_missing_scores():
    table = format_table({"action": dict.fromkeys(METRICS, 50.0), "stance": dict.fromkeys(METRICS),
                          "videos": 1, "split": "val"})
    lines = table.splitlines()
    assert len(lines) == 3 and lines[1].split()[1:] == ["50.00"] * len(METRICS)
    assert lines[2].split()[1:] == ["-"] * len(METRICS)
