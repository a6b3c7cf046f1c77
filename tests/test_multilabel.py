"""Multi-label tasks (overlapping behaviours) and rare classes: the contract, the loss, per-behaviour
thresholds and metrics, and one run through train -> evaluate -> predict on ``demo-data --multilabel``."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from kit.config import ConfigError, RunConfig
from kit.data import load_records
from kit.data.demo import make_demo_data
from kit.data.labels import IGNORE_INDEX, build_vocab, encode_multilabel, multilabel_tasks, split_labels
from kit.data.video import DataError
from kit.temporal.behaviours import average_precision, behaviour_metrics, choose_thresholds
from kit.temporal.losses import pos_weights_from_counts
from kit.temporal.model import TemporalConvNet, segmentation_loss


@pytest.fixture(scope="module")
def ml_root(tmp_path_factory):
    """The multi-label demo, 4 videos (2 train, 1 val, 1 test)."""
    root = make_demo_data(tmp_path_factory.mktemp("ml") / "data", num_videos=4, multilabel=True)
    (root / "splits.csv").write_text("video,split\ndemo_000,train\ndemo_001,train\ndemo_002,val\ndemo_003,test\n")
    return root


def test_a_frame_carries_two_behaviours(ml_root):
    records = load_records(ml_root)
    assert multilabel_tasks(records) == ["behaviour"]
    vocab = build_vocab(records, ["action", "behaviour"], ["behaviour"])
    assert vocab["behaviour"] == ["arms_up", "moving", "scratch"]
    y = np.concatenate([encode_multilabel(r.labels["behaviour"], vocab["behaviour"], r.num_frames) for r in records])
    both = y.sum(1) >= 2
    assert both.any(), "the demo's jumps are moving|arms_up"
    assert (y == 0).all(1).any(), "and some frames have none of them (-)"
    k = vocab["behaviour"].index("scratch")
    assert 0 < y[:, k].mean() < 0.02, "scratch is rare: under 2 % of the frames"


def test_binary_columns_read_as_the_pipe_column(ml_root, tmp_path):
    import shutil

    shutil.copytree(ml_root, tmp_path / "d")
    csv = tmp_path / "d" / "Annotations" / "demo_000.csv"
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    for b in ("arms_up", "moving", "scratch"):
        df[f"behaviour:{b}"] = [str(int(b in split_labels(v))) for v in df["behaviour"]]
    df.loc[3, [f"behaviour:{b}" for b in ("arms_up", "moving", "scratch")]] = ""  # one unlabeled frame
    want = df["behaviour"].tolist()
    want[3] = ""
    df.drop(columns="behaviour").to_csv(csv, index=False)
    rec = load_records(tmp_path / "d", stems=["demo_000"])[0]
    assert rec.labels["behaviour"] == want
    df.loc[5, "behaviour:moving"] = "yes"
    df.drop(columns="behaviour").to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"line 7.*behaviour:moving.*'yes'|behaviour:moving.*'yes'"):
        load_records(tmp_path / "d", stems=["demo_000"])


def test_encoding_keeps_unlabeled_frames_out():
    y = encode_multilabel(["groom|rear", "-", "", "rear|dig"], ["groom", "rear"], 4)
    assert y.tolist() == [[1, 1], [0, 0], [IGNORE_INDEX, IGNORE_INDEX], [0, 1]]


def test_bce_focal_and_pos_weight():
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 2)
    y = torch.tensor([[[1, 0], [1, 1], [0, 0], [IGNORE_INDEX, IGNORE_INDEX], [0, 1], [1, 0]]]).float()
    mask = torch.ones(1, 6, dtype=torch.bool)
    _, parts = segmentation_loss([{"b": logits}], {"b": y}, mask, smooth_weight=0.0)
    keep = (y != IGNORE_INDEX)
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], y[keep])
    assert parts["ce/b"] == pytest.approx(want.item(), rel=1e-5)
    _, focal = segmentation_loss([{"b": logits}], {"b": y}, mask, smooth_weight=0.0, loss="focal", focal_gamma=2.0)
    assert 0 < focal["ce/b"] < parts["ce/b"]
    _, g0 = segmentation_loss([{"b": logits}], {"b": y}, mask, smooth_weight=0.0, loss="focal", focal_gamma=0.0)
    assert g0["ce/b"] == pytest.approx(parts["ce/b"], rel=1e-5)
    assert pos_weights_from_counts([1, 0], [4, 4]).tolist() == [3.0, 1.0]


def test_focal_cross_entropy_on_a_single_label_task():
    torch.manual_seed(0)
    logits, target = torch.randn(1, 8, 3), torch.randint(0, 3, (1, 8))
    target[0, 0] = IGNORE_INDEX
    mask = torch.ones(1, 8, dtype=torch.bool)
    _, ce = segmentation_loss([{"a": logits}], {"a": target}, mask, smooth_weight=0.0)
    _, g0 = segmentation_loss([{"a": logits}], {"a": target}, mask, smooth_weight=0.0, loss="focal", focal_gamma=0.0)
    _, g2 = segmentation_loss([{"a": logits}], {"a": target}, mask, smooth_weight=0.0, loss="focal", focal_gamma=2.0)
    assert g0["ce/a"] == pytest.approx(ce["ce/a"], rel=1e-5) and g2["ce/a"] < ce["ce/a"]
    with pytest.raises(ConfigError, match="loss"):
        RunConfig(loss="bce")


def test_later_stages_refine_sigmoids_of_a_multilabel_task():
    torch.manual_seed(0)
    a = TemporalConvNet(4, {"x": 3}, channels=8, layers=2, stages=2, multilabel=["x"]).eval()
    b = TemporalConvNet(4, {"x": 3}, channels=8, layers=2, stages=2).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 10, 4)
    first_a, last_a = a(x)[0]["x"], a(x)[-1]["x"]
    assert torch.equal(first_a, b(x)[0]["x"]) and not torch.allclose(last_a, b(x)[-1]["x"])


def test_average_precision_thresholds_and_bout_metrics():
    assert average_precision(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx(250 / 3)
    assert np.isnan(average_precision(np.array([0.2, 0.1]), np.array([0, 0])))
    p = np.array([[0.1, 0.2], [0.35, 0.3], [0.4, 0.9], [0.05, 0.8], [0.6, 0.1]])
    y = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [IGNORE_INDEX, IGNORE_INDEX]])
    th = choose_thresholds([p], [y], ["a", "b"])
    assert th["a"] == pytest.approx(0.11) and th["b"] == pytest.approx(0.31)  # lowest threshold with F1 = 100
    m = behaviour_metrics([p], [y], ["a", "b"], th)
    assert m["a"]["f1"] == m["b"]["f1"] == 100.0 and m["b"]["f1@50"] == 100.0 and m["b"]["edit"] == 100.0
    assert m["a"]["support"] == 2 and m["mean"]["ap"] == 100.0
    half = behaviour_metrics([p], [y], ["a", "b"])  # 0.5: a is missed
    assert half["a"]["recall"] == 0.0 and half["a"]["f1@10"] == 0.0


def test_train_evaluate_predict_a_multilabel_run(ml_root, tmp_path, capsys):
    from kit.results.evaluate import format_table, main_evaluate
    from kit.results.predict import predict
    from kit.temporal.train import fit

    cfg = RunConfig(data_root=str(ml_root), backbone="tiny", img_size=32, epochs=1, output_dir=str(tmp_path),
                    run_name="ml", tcn_layers=3, tcn_channels=16, loss="focal", class_weights=True)
    run = fit(cfg).run_dir
    thresholds = json.loads((run / "thresholds.json").read_text())
    assert set(thresholds) == {"behaviour"} and set(thresholds["behaviour"]) == {"arms_up", "moving", "scratch"}
    assert all(0 < v < 1 for v in thresholds["behaviour"].values())
    assert "val_behaviour_ap" in pd.read_csv(run / "history.csv")

    assert main_evaluate(["--run", str(run), "--split", "test"]) == 0
    res = json.loads((run / "eval_test.json").read_text())
    scratch = res["behaviour"]["behaviours"]["scratch"]
    assert {"precision", "recall", "f1", "ap", "edit", "f1@10", "f1@25", "f1@50"} <= set(scratch)
    assert scratch["threshold"] == thresholds["behaviour"]["scratch"] and 0 < scratch["frames_pct"] < 2
    assert "acc" in res["action"] and res["action"]["per_class"]
    table = format_table(res)
    line = next(ln for ln in table.splitlines() if ln.startswith("behaviour/scratch"))
    assert len(line.split()) == 11 and table in capsys.readouterr().out  # F1 etc. of a class in < 2 % of frames
    pred = pd.read_csv(run / "predictions" / "demo_003.csv", keep_default_na=False)
    assert {"behaviour:moving_true", "behaviour:moving_prob", "behaviour:moving_pred"} <= set(pred.columns)

    out = predict(run, ml_root / "Videos" / "demo_003.mp4", out=tmp_path / "labels", progress=False)
    frames = pd.read_csv(tmp_path / "labels" / "demo_003.csv")
    p, d = frames["behaviour:scratch_prob"], frames["behaviour:scratch"]
    assert ((p >= thresholds["behaviour"]["scratch"]) == (d == 1)).all()  # the decision is the run's threshold
    segs = pd.read_csv(tmp_path / "labels" / "demo_003.segments.csv", keep_default_na=False)
    assert {"behaviour:arms_up", "behaviour:moving", "behaviour:scratch"} <= set(segs["task"])
    assert set(out.summary["task"]) >= {"action", "behaviour:scratch"}


def test_the_printed_table_has_per_class_rows_with_their_share_of_frames():
    from kit.results.evaluate import METRICS, format_table

    per_class = {"idle": {"precision": 90.0, "recall": 95.0, "f1-score": 92.4, "support": 990},
                 "fall": {"precision": 50.0, "recall": 20.0, "f1-score": 28.6, "support": 10}}
    table = format_table({"action": dict(dict.fromkeys(METRICS, 50.0), per_class=per_class), "videos": 1})
    row = next(ln for ln in table.splitlines() if ln.startswith("action/fall")).split()
    assert row[1:] == ["50.00", "20.00", "28.60", "10", "1.00"]  # a class in 1 % of the frames, its F1 shown
