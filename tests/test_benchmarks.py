"""The benchmark path end to end: the kit's data exported to the MS-TCN layout, read back, cross-validated."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kit.config import RunConfig
from kit.data import load_records
from kit.data.mstcn import load_mstcn
from kit.features.export import export_dataset
from kit.features.store import FeatureStore

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--backbone", "tiny", "--img_size", "32", "--tcn_layers", "3", "--tcn_channels", "8"]


def _kit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kit", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


# --- upstream eval.py (yabufarha/ms-tcn), re-derived here from its text: the protocol the papers report -------
def _eval_segments(frames: list[str], bg=("background",)):
    labels, starts, ends, last = [], [], [], frames[0]
    if frames[0] not in bg:
        labels.append(frames[0]), starts.append(0)
    for i, v in enumerate(frames):
        if v != last:
            if v not in bg:
                labels.append(v), starts.append(i)
            if last not in bg:
                ends.append(i)
            last = v
    if last not in bg:
        ends.append(len(frames))
    return labels, starts, ends


def _eval_edit(p: list[str], y: list[str]) -> float:
    P, Y = _eval_segments(p)[0], _eval_segments(y)[0]
    D = np.zeros((len(P) + 1, len(Y) + 1))
    D[:, 0], D[0, :] = np.arange(len(P) + 1), np.arange(len(Y) + 1)
    for j in range(1, len(Y) + 1):
        for i in range(1, len(P) + 1):
            D[i, j] = D[i - 1, j - 1] if Y[j - 1] == P[i - 1] else min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1]) + 1
    return (1 - D[-1, -1] / max(len(P), len(Y))) * 100


def _eval_f(p: list[str], y: list[str], overlap: float) -> tuple[float, float, float]:
    pl, ps, pe = _eval_segments(p)
    yl, ys, ye = (np.array(v) for v in _eval_segments(y))
    tp = fp = 0
    hits = np.zeros(len(yl))
    for j in range(len(pl)):
        iou = (np.minimum(pe[j], ye) - np.maximum(ps[j], ys)) / (np.maximum(pe[j], ye) - np.minimum(ps[j], ys)) \
            * (yl == pl[j])
        k = iou.argmax()
        if iou[k] >= overlap and not hits[k]:
            tp, hits[k] = tp + 1, 1
        else:
            fp += 1
    return tp, fp, len(yl) - hits.sum()


def _upstream_scores(layout: Path, run: Path, fold: int) -> dict:
    vids = (layout / "splits" / f"test.split{fold}.bundle").read_text().split("\n")[:-1]
    edit, counts = [], np.zeros((3, 3))
    for vid in vids:
        gt = (layout / "groundTruth" / vid).read_text().split("\n")[:-1]
        rec = (run / "predictions" / vid).read_text().split("\n")[1].split()
        edit.append(_eval_edit(rec, gt))
        counts += [_eval_f(rec, gt, k) for k in (0.1, 0.25, 0.5)]
    f1 = [200 * tp / (2 * tp + fp + fn) for tp, fp, fn in counts]
    return {"edit": float(np.mean(edit)), "f1@10": f1[0], "f1@25": f1[1], "f1@50": f1[2]}


def test_export_then_crossval_through_the_command_line(demo_root, tmp_path):
    """The README's benchmark command on a layout with a `background` class gives eval.py's numbers, no flag."""
    out, layout = tmp_path / "outputs", tmp_path / "mstcn"
    proc = _kit("export", "--data_root", str(demo_root), "--output_dir", str(out), "--out", str(layout),
                "--folds", "2", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in (layout / "splits").iterdir()} == {f"{k}.split{n}.bundle" for k in ("train", "test")
                                                                 for n in (1, 2)}
    for f in [layout / "mapping.txt", *(layout / "groundTruth").iterdir()]:  # the demo's idle is a benchmark's background
        f.write_text("\n".join(("background" if w == "idle" else w) if f.name != "mapping.txt" else
                               " ".join("background" if x == "idle" else x for x in w.split(" "))
                               for w in f.read_text().split("\n")))
    proc = _kit("crossval", "--data_root", str(layout), "--output_dir", str(out), "--recipe", "mstcn",
                "--epochs", "1", "--run_name", "cv", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| 1 | last (epoch 1) |" in proc.stdout and "| 2 | last (epoch 1) |" in proc.stdout  # no val: last.pt
    assert "**mean +/- std**" in proc.stdout
    assert "edit and F1@k leave out: background (the MS-TCN protocol" in proc.stdout
    result = json.loads((out / "crossval" / "cv.json").read_text())
    assert [r["fold"] for r in result["folds"]] == [1, 2] and set(result["mean"]) == set(result["std"])
    assert result["background"] == ["background"] and result["background_rule"] == "protocol"
    for row in result["folds"]:
        want = _upstream_scores(layout, out / f"cv-split{row['fold']}", row["fold"])
        assert {k: round(row[k], 2) for k in want} == pytest.approx({k: round(v, 2) for k, v in want.items()}, abs=0.011)
    assert sum(r["videos"] for r in result["folds"]) == len(load_records(demo_root))  # every video tested once
    cfg = RunConfig.load(out / "cv-split1" / "config.json")
    assert (cfg.optimizer, cfg.tcn_stages, cfg.feature_proj, cfg.dataset_format) == ("adam", 4, False, "auto")


def test_export_reads_back_with_the_same_labels_and_features(demo_root, tmp_path):
    cfg = RunConfig(data_root=str(demo_root), backbone="tiny", img_size=32, output_dir=str(tmp_path / "out"))
    layout = export_dataset(cfg, tmp_path / "mstcn", progress=False)
    records, splits, vocab = load_mstcn(layout, split_index=1)
    kit = {r.stem: r for r in load_records(demo_root)}
    assert vocab["action"] == sorted({v for r in kit.values() for v in r.labels["action"]})
    stores = list((tmp_path / "out" / "features").glob("*/*"))
    assert len(stores) == 1
    store = FeatureStore(stores[0])
    for r in records:
        assert r.labels["action"] == kit[r.stem].labels["action"] and r.num_frames == kit[r.stem].num_frames
        assert np.array_equal(np.load(r.features_path), np.load(store.path(r.stem)))  # the same bytes' values
    assert {k: sorted(x.stem for x in v) for k, v in splits.items() if v} == \
        {k: sorted(v) for k, v in json.loads(json.dumps({"train": ["demo_000", "demo_001", "demo_002", "demo_003"],
                                                         "val": ["demo_004"], "test": ["demo_005"]})).items()}
