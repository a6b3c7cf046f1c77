"""kit.results.report: what notebooks 03/04 print about a run, on a short trained tiny run."""
from __future__ import annotations

import json
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import kit.results.report as report  # noqa: E402
from kit.config import RunConfig  # noqa: E402
from kit.results.evaluate import METRICS  # noqa: E402

pytest_plugins = ["fixtures_run"]


@pytest.fixture(scope="module")
def result(trained_run):
    return json.loads((trained_run / "eval_val.json").read_text())


def test_config_summary_says_demo_and_tiny(tmp_path):
    text = report.config_summary(RunConfig(output_dir=str(tmp_path), run_name="r", epochs=3))
    assert f"DEMO data in {tmp_path / 'demo_data'}" in text and "Backbone: tiny" in text and "RANDOM" in text
    assert "3 epochs" in text and f"Output: {tmp_path / 'r'}" in text
    mine = report.config_summary(RunConfig(data_root="/data/x", output_dir=str(tmp_path)))
    assert "Data: /data/x" in mine and "Backbone: auto" in mine and "DEMO" not in mine


def test_find_run_newest_or_given(trained_run, tmp_path, capsys):
    assert report.find_run("", trained_run.parent) == trained_run
    out = capsys.readouterr().out
    assert f"Run: {trained_run} (the newest run under {trained_run.parent})" in out
    assert "Backbone: tiny" in out and "2 epochs" in out
    assert report.find_run(trained_run) == trained_run
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        report.find_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no trained run"):
        report.find_run("", tmp_path)


def test_run_files_describes_the_folder(trained_run):
    df = report.run_files(trained_run)
    assert {"config.json", "last.pt", "best.pt", "history.csv", "predictions/", "eval_val.json"} <= set(df.index)
    assert df.loc["last.pt", "what"] == "checkpoint after the last epoch" and df.loc["last.pt", "KiB"] > 0
    n = len(list((trained_run / "predictions").iterdir()))  # per video: the .csv and MS-TCN's .txt
    assert df.loc["predictions/", "what"].startswith(f"{n} files")


def test_metrics_table_is_the_eval_json(result):
    df = report.metrics_table(result)
    assert list(df.columns) == list(METRICS) and list(df.index) == ["action", "stance"]
    assert df.loc["action", "acc"] == result["action"]["acc"]


def test_per_class_table(result):
    df = report.per_class_table(result)
    assert list(df.columns) == ["precision", "recall", "f1-score", "support"]
    classes = result["action"]["labels"]
    assert df.loc["action"].loc[classes, "support"].sum() == sum(map(sum, result["action"]["confusion"]))
    assert df["support"].dtype.kind == "i"
    assert report.per_class_table({"videos": 1}).empty


def test_read_predictions(trained_run):
    first = report.read_predictions(trained_run)
    stem = sorted((trained_run / "predictions").glob("*.csv"))[0].stem
    assert first.equals(report.read_predictions(trained_run, stem))
    assert {"frame", "action_true", "action_pred", "action_conf"} <= set(first.columns)
    assert isinstance(first, pd.DataFrame) and first["frame"].tolist() == list(range(len(first)))
    with pytest.raises(FileNotFoundError, match="predictions there"):
        report.read_predictions(trained_run, "nope")


def test_behaviour_tables_of_a_run_without_multilabel_tasks_say_so(tmp_path):
    from kit.results.report import NO_MULTILABEL, behaviour_table, run_thresholds

    single = {"action": {"acc": 90.0, "per_class": {}}, "videos": 1}
    for table in (behaviour_table(single), run_thresholds(tmp_path)):
        assert list(table.columns) == ["note"] and table["note"].tolist() == [NO_MULTILABEL]
    multi = {"behaviour": {"multilabel": True, "behaviours": {"groom": {"precision": 50.0, "support": 3}}}}
    assert behaviour_table(multi).loc[("behaviour", "groom"), "support"] == 3
