"""python -m kit compare: one run per visual mode x pose, a markdown table, the best mode marked."""
from __future__ import annotations

import json

from kit.compare import best_mode, main_compare, to_markdown


def test_best_mode_averages_over_pose_settings():
    rows = [dict(visual_mode="clip", use_pose=True, acc=99, edit=99, **{"f1@10": 0, "f1@25": 0, "f1@50": 99}),
            dict(visual_mode="clip", use_pose=False, acc=10, edit=10, **{"f1@10": 0, "f1@25": 0, "f1@50": 10}),
            dict(visual_mode="tokens", use_pose=True, acc=98, edit=98, **{"f1@10": 0, "f1@25": 0, "f1@50": 98}),
            dict(visual_mode="tokens", use_pose=False, acc=40, edit=40, **{"f1@10": 0, "f1@25": 0, "f1@50": 40})]
    assert best_mode(rows) == "tokens"
    table = to_markdown(rows)
    assert "| `tokens` **(best)** | yes |" in table and "| `clip` | no |" in table


def test_compare_command_on_the_demo(demo_root, tmp_path, capsys):
    code = main_compare(["--data_root", str(demo_root), "--backbone", "tiny", "--epochs", "1", "--seeds", "0", "--img_size", "32",
                         "--train_T", "48", "--val_T", "48", "--split", "val", "--output_dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    for mode in ("clip", "tokens", "sliding"):
        assert f"| `{mode}`" in out
    saved = json.loads(next((tmp_path / "compare").glob("*.json")).read_text())
    assert len(saved["rows"]) == 6 and saved["best_mode"] in ("clip", "tokens", "sliding")
    assert all(0 <= r["acc"] <= 100 for r in saved["rows"])
