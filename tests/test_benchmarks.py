"""The benchmark path end to end: the kit's data exported to the MS-TCN layout, read back, cross-validated."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from kit.config import RunConfig
from kit.data import load_records
from kit.data.mstcn import load_mstcn
from kit.features.export import export_dataset
from kit.features.store import FeatureStore

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--backbone", "tiny", "--img_size", "32", "--tcn_layers", "3", "--tcn_channels", "8"]


def _kit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kit", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_export_then_crossval_through_the_command_line(demo_root, tmp_path):
    out, layout = tmp_path / "outputs", tmp_path / "mstcn"
    proc = _kit("export", "--data_root", str(demo_root), "--output_dir", str(out), "--out", str(layout),
                "--folds", "2", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in (layout / "splits").iterdir()} == {f"{k}.split{n}.bundle" for k in ("train", "test")
                                                                 for n in (1, 2)}
    proc = _kit("crossval", "--data_root", str(layout), "--output_dir", str(out), "--recipe", "mstcn",
                "--epochs", "1", "--run_name", "cv", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| 1 | last (epoch 1) |" in proc.stdout and "| 2 | last (epoch 1) |" in proc.stdout  # no val: last.pt
    assert "**mean +/- std**" in proc.stdout
    result = json.loads((out / "crossval" / "cv.json").read_text())
    assert [r["fold"] for r in result["folds"]] == [1, 2] and set(result["mean"]) == set(result["std"])
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
