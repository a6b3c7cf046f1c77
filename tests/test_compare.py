"""python -m kit compare: backbone specs, the protocol (rank on val, report test once), the table, a real run."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import kit.compare as kc
from kit.config import RunConfig

from _tiny_models import save_tiny_videomae


def test_backbone_specs(tmp_path):
    assert kc.parse_backbone("") == {}
    assert kc.parse_backbone("tiny") == {"backbone": "tiny"}
    assert kc.parse_backbone("hf:facebook/vjepa2-vitl-fpc16-256-ssv2,img_size=256,num_frames=16") == {
        "backbone": "hf", "model_id": "facebook/vjepa2-vitl-fpc16-256-ssv2", "img_size": 256, "num_frames": 16}
    assert kc.parse_backbone(f"hf:{tmp_path}") == {"backbone": "hf", "backbone_path": str(tmp_path)}
    weights = tmp_path / "clip.safetensors"
    weights.write_bytes(b"")
    assert kc.parse_backbone(f"vit2d:vit_base_patch16_clip_224.openai,path={weights},resize_mode=pad") == {
        "backbone": "vit2d", "model_id": "vit_base_patch16_clip_224.openai", "backbone_path": str(weights),
        "resize_mode": "pad"}
    for bad, why in [("resnet", "not one of"), ("tiny:x", "no source"), (f"vit2d:{weights}", "path="),
                     ("hf:a/b,img_size=big", "not an int"), ("hf:a/b,lr=1", "KEY=VALUE"),
                     ("hf:a/b,resize_mode=zoom", "resize_mode")]:
        with pytest.raises(ValueError, match=why):
            kc.parse_backbone(bad)


def _row(backbone, mode, pose, val, test, seeds=(0, 1, 2)):
    """A result row with per-seed F1@50 (and the other metrics equal to it) on val and test."""
    def split(vals):
        return kc._summary([{"s": {k: v for k in kc.COLUMNS}} for v in vals], "s")
    return {"backbone": backbone, "visual_mode": mode, "use_pose": pose, "seeds": list(seeds), "dim": 8,
            "fingerprint": "f", "extract_s": 0.0, "val": split(val), "test": split(test)}


def test_ranking_and_decisions_use_the_selection_split_only():
    rows = [_row("a", "tokens", False, val=[80, 82, 81], test=[10, 10, 10]),
            _row("b", "tokens", False, val=[50, 52, 51], test=[90, 90, 90]),  # better on test: must not matter
            _row("a", "clip", False, val=[75, 77, 76], test=[50, 50, 50]),
            _row("b", "clip", False, val=[30, 70, 50], test=[50, 50, 50])]
    rows.sort(key=lambda r: kc._key(r, "val", "f1@50"), reverse=True)
    assert [(r["backbone"], r["visual_mode"]) for r in rows][:2] == [("a", "tokens"), ("a", "clip")]
    d = kc.decide(rows, "val", "f1@50")
    # backbone: a 78.5 +/- 1 (per-seed means over its variants) vs b 50.5 +/- 10.5: decided
    assert d["backbone"]["winner"] == "a" and d["backbone"]["scores"]["a"]["mean"] == pytest.approx(78.5)
    # visual mode: tokens 66 +/- 1 vs clip 63 +/- 10.5: a 3-point lead inside clip's spread
    assert d["visual_mode"]["winner"] is None and d["visual_mode"]["spread"] == pytest.approx(10.5)
    result = {"rows": rows, "select_on": "val", "report_on": "test", "rank_by": "f1@50", "task": "action",
              "note": "", "decisions": d, "config": RunConfig().to_dict(), "date": "today",
              "machine": {"device": "CPU", "load": 1.0}}
    md = kc.to_markdown(result)
    assert "ranked on **val**" in md and "**test** reported once per run, never used to choose" in md
    assert "| 1 **(best on val)** | `a` | `tokens` | no | 81.0 ± 1.0 | 10.0 ± 0.0" in md
    assert "- backbone: **a**" in md and "- visual_mode: undecided" in md


def test_visual_mode_comparison_protocol(monkeypatch, demo_root, tmp_path):
    """The old comparison (--visual_modes clip tokens --pose yes no): 4 variants, each run scored on val
    (selection) and test (report), features extracted once per visual mode, not per run."""
    import kit.features.extract as ke
    import kit.results.evaluate as ev
    import kit.temporal.train as tr

    extracted, scored = [], []

    def ensure_features(cfg, records, output_dir=None, **kw):
        extracted.append(cfg.visual_mode)
        store = SimpleNamespace(root=tmp_path / cfg.visual_mode)
        return store, SimpleNamespace(feature_dim=8, fingerprint=cfg.visual_mode), []

    def fit(cfg):
        return SimpleNamespace(run_dir=tmp_path / cfg.run_name, best_epoch=1, cfg=cfg)

    def evaluate(run_dir, split, checkpoint):
        scored.append(split)
        good = ("tokens" in str(run_dir)) == (split == "val")  # tokens better on val, clip better on test
        return {"action": {k: 80.0 + len(scored) % 3 if good else 20.0 for k in kc.COLUMNS}}

    monkeypatch.setattr(ke, "ensure_features", ensure_features)
    monkeypatch.setattr(tr, "fit", fit)
    monkeypatch.setattr(ev, "evaluate", evaluate)
    monkeypatch.setattr(kc.time, "strftime", lambda fmt: "tokens" if "%H" in fmt else "today")  # names runs
    base = RunConfig(data_root=str(demo_root), epochs=1, img_size=32, output_dir=str(tmp_path))
    out = kc.compare(base, ("tiny",), ("clip", "tokens"), (True, False), (0, 1))
    assert sorted(extracted) == ["clip", "tokens"]  # once per mode, whatever the pose settings and seeds
    assert scored.count("val") == scored.count("test") == 8  # 4 variants x 2 seeds, each split once per run
    assert {(r["visual_mode"], r["use_pose"]) for r in out["rows"]} == {
        ("clip", True), ("clip", False), ("tokens", True), ("tokens", False)}
    assert out["report_on"] == "test" and out["decisions"]["use_pose"]["winner"] is None


def test_compare_command_on_the_demo(demo_root, tmp_path, capsys):
    """Two backbones (tiny, a saved VideoMAE through backbone='hf'), two seeds: a table with both rows and spread."""
    ckpt = tmp_path / "videomae"
    save_tiny_videomae(ckpt)
    out = tmp_path / "out"
    code = kc.main_compare(["--backbones", "tiny", f"hf:{ckpt}", "--visual_modes", "tokens", "--pose", "no",
                            "--seeds", "0", "1", "--epochs", "1", "--img_size", "32", "--data_root", str(demo_root),
                            "--output_dir", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert "| `tiny` | `tokens` | no |" in table and f"| `hf:{ckpt}` | `tokens` | no |" in table
    assert "ranked on **val**" in table and table.count(" ± ") >= 2 * 6
    saved = json.loads(next((out / "compare").glob("*.json")).read_text())
    assert len(saved["rows"]) == 2 and saved["select_on"] == "val" and saved["report_on"] == "test"
    for row in saved["rows"]:
        assert len(row["runs"]) == 2 and all(0 <= v <= 100 for v in row["test"]["acc"]["values"])
        assert row["test"]["acc"]["std"] is not None
        store = Path(row["store"])  # extracted before the first run, never again by the runs
        first_run = min(Path(r["run"]) / "config.json" for r in row["runs"])
        assert max(p.stat().st_mtime for p in store.glob("*.npy")) < first_run.stat().st_mtime
    assert {r["dim"] for r in saved["rows"]} == {64, 32}
    assert (out / "compare" / next((out / "compare").glob("*.json")).name.replace(".json", ".md")).is_file()


def test_compare_refuses_bad_input_before_training(demo_root, data_copy, tmp_path, capsys):
    common = ["--output_dir", str(tmp_path)]
    assert kc.main_compare(["--backbones", "resnet", "--data_root", str(demo_root)] + common) == 2
    assert "not one of" in capsys.readouterr().out
    assert kc.main_compare(["--task", "gesture", "--data_root", str(demo_root)] + common) == 2
    assert "'gesture' is not a label column of the data (action, stance)" in capsys.readouterr().out
    # 2 videos, no splits.csv, no val share: nothing to select on
    assert kc.main_compare(["--data_root", str(data_copy), "--config", str(_config(tmp_path, val_fraction=0.0))]
                           + common) == 2
    assert "no 'val' videos to select on" in capsys.readouterr().out
    assert not list(tmp_path.glob("compare-*"))  # no run was started


def _config(tmp_path, **fields) -> Path:
    path = tmp_path / "config.json"
    RunConfig(**fields).save(path)
    return path
