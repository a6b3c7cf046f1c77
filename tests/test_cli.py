"""Every flag of every command reaches the code it names."""
from __future__ import annotations

import json

import pytest

import kit.data.demo as demo
from kit.__main__ import config_from_args, main
from kit.config import PATH_FIELDS, RunConfig, cli_path, field_types
from kit.data import load_records
from kit.results.evaluate import main_evaluate

pytest_plugins = ["fixtures_run"]

# a valid value unlike the default, per field
OTHER = {str: "x", int: 3, float: 0.125, dict: {"action": 2.0}}
CHOICE = {"model_type": "action_only", "backbone": "vit2d", "visual_mode": "clip", "mixed_precision": "bf16",
          "dataset_format": "mstcn", "recipe": "mstcn", "optimizer": "adam", "lr_schedule": "constant",
          "pipeline": "windows", "resize_mode": "pad", "feature_dtype": "float32", "report_to": "tensorboard",
          "img_size": 64, "num_frames": 8,  # (the demo's tiny backbone takes multiples of its patch and tubelet)
          "temporal_model": "asformer", "loss": "focal"}


@pytest.mark.parametrize("name,typ", list(field_types().items()))
def test_every_train_flag_sets_its_field(name, typ):
    default = getattr(RunConfig(), name)
    if typ is bool:
        argv, want = [f"--no-{name}" if default else f"--{name}"], not default
    else:
        want = CHOICE.get(name, OTHER[typ])
        argv = [f"--{name}", json.dumps(want) if typ is dict else str(want)]
    if name in PATH_FIELDS:  # a path flag arrives absolute: relative to the current directory
        want = cli_path(want)
    assert getattr(config_from_args(argv), name) == want


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "config.json"
    RunConfig(epochs=7, lr=0.01).save(path)
    cfg = config_from_args(["--config", str(path), "--lr", "0.5"])
    assert (cfg.epochs, cfg.lr) == (7, 0.5)


def test_unknown_command_and_top_level_help(capsys):
    assert main(["nope"]) == 2
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out


def test_evaluate_flags(trained_run, capsys):
    out = trained_run.parent
    # the test split: the shared run's eval_val.json belongs to test_evaluate.py
    code = main_evaluate(["--output_dir", str(out), "--split", "test", "--checkpoint", "last", "--batch_size", "1",
                          "--background", "idle"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"{trained_run}" in printed and "checkpoint=last" in printed
    res = json.loads((trained_run / "eval_test.json").read_text())
    assert res["checkpoint"] == "last" and res["background"] == ["idle"]
    assert main(["evaluate", "--run", str(trained_run), "--split", "nope"]) == 1  # one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and "Traceback" not in err


def test_demo_data_seed_flag(tmp_path):
    for seed in (0, 1):
        demo.main_demo(["--out", str(tmp_path / f"s{seed}"), "--num_videos", "1", "--seed", str(seed), "--size", "64"])
    a, b = (load_records(tmp_path / f"s{s}")[0] for s in (0, 1))
    assert a.labels["action"] != b.labels["action"] or a.num_frames != b.num_frames
