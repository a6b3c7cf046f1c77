"""What a new user meets: relative paths from where the command runs, and damaged or wrong input
named in one line (never a traceback), each fixed where it was found (issue: measuring the kit from outside)."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from kit.__main__ import config_from_args, main
from kit.config import RunConfig, cli_path, project_root
from kit.data.dataset import data_paths
from kit.errors import CheckpointError, ConfigError, DataFileError
from kit.results.evaluate import evaluate

pytest_plugins = ["fixtures_run"]


def _error(capsys, *argv) -> str:
    """The CLI's stderr for a failing command: exactly one `error:` line, no traceback."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err  # warnings and progress may come first; the error is one last line
    lines = [s for s in err.splitlines() if s.startswith("error: ")]
    assert len(lines) == 1 and err.endswith(lines[0] + "\n") and "Traceback" not in err, err
    return lines[0] + "\n"


# --- paths: the CLI resolves every relative path against the current directory ----------------------
def test_cli_paths_are_relative_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config_from_args(["--data_root", "mydemo", "--poses", "~/p", "--backbone_path", "../ckpt"])
    assert cfg.data_root == str(tmp_path / "mydemo")
    assert cfg.output_dir == str(tmp_path / "outputs")  # the default too: runs land where you are
    assert cfg.backbone_path == str(tmp_path.parent / "ckpt") and cfg.poses == str(Path("~/p").expanduser())
    assert cfg.videos == "" and cfg.annotations == ""  # unset stays unset
    (tmp_path / "c.json").write_text(json.dumps({"data_root": "rel", "output_dir": "runs"}))
    cfg = config_from_args(["--config", "c.json"])
    assert (cfg.data_root, cfg.output_dir) == (str(tmp_path / "rel"), str(tmp_path / "runs"))
    assert cli_path("") == "" and cli_path("/abs/x") == "/abs/x"


def test_python_and_notebooks_resolve_relative_paths_against_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = data_paths(RunConfig(data_root="data/mine", splits="s.csv"))
    assert paths["data_root"] == str(project_root() / "data" / "mine")
    assert paths["splits"] == str(project_root() / "s.csv") and paths["videos"] == ""


def test_a_run_from_a_project_folder_reads_and_writes_there_and_says_where(data_copy, tmp_path, monkeypatch, caplog):
    project = tmp_path / "project"
    shutil.copytree(data_copy, project / "mydemo")
    monkeypatch.chdir(project)
    with caplog.at_level(logging.INFO, logger="kit"):
        assert main(["train", "--data_root", "mydemo", "--epochs", "1", "--run_name", "r", "--backbone", "tiny",
                     "--img_size", "32", "--tcn_layers", "2", "--tcn_channels", "8"]) == 0
    assert (project / "outputs" / "r" / "last.pt").is_file()
    assert f"[info] Run folder: {project / 'outputs' / 'r'}" in caplog.text
    assert f"[info] Data: {project / 'mydemo'}" in caplog.text
    assert RunConfig.load(project / "outputs" / "r" / "config.json").data_root == str(project / "mydemo")


# --- damaged files ------------------------------------------------------------------------------------
@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A writable copy of the shared trained run with its data and feature store beside it."""
    out = tmp_path / "outputs"
    shutil.copytree(trained_run.parent, out, ignore=shutil.ignore_patterns("*.lock"))
    return out / trained_run.name


def test_an_emptied_feature_store_is_rebuilt_with_a_warning(run_copy, caplog):
    stores = list((run_copy.parent / "features").glob("*/*/manifest.json"))
    assert stores
    for manifest in stores:
        for f in manifest.parent.iterdir():
            f.write_bytes(b"")  # every file emptied, manifest.json included
    with caplog.at_level(logging.WARNING, logger="kit"):
        res = evaluate(run_copy, split="val")
    assert res["videos"] == 1 and 0 <= res["action"]["acc"] <= 100
    assert "manifest.json: empty file" in caplog.text and "rebuilding the store" in caplog.text
    rebuilt = [m for m in stores if m.read_text().strip()]  # the run's store (others in the folder stay as they are)
    assert len(rebuilt) == 1 and json.loads(rebuilt[0].read_text())["fingerprint"]  # a new manifest
    assert list(rebuilt[0].parent.glob("manifest.json.damaged-*"))  # the old one kept aside


def test_an_empty_checkpoint_is_one_line_naming_it(run_copy, capsys):
    (run_copy / "best.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="an empty file"):
        evaluate(run_copy, split="val", checkpoint="best")
    err = _error(capsys, "evaluate", "--run", str(run_copy), "--checkpoint", "best")
    assert str(run_copy / "best.pt") in err and "--checkpoint last" in err


def test_a_corrupt_splits_json_is_named_with_line_and_column(run_copy, capsys):
    (run_copy / "splits.json").write_text('{"train": [,]}')
    with pytest.raises(DataFileError, match=r"splits.json: not valid JSON at line 1, column 12"):
        evaluate(run_copy, split="val")
    assert str(run_copy / "splits.json") in _error(capsys, "evaluate", "--run", str(run_copy))


# --- bad values: refused before anything is written ---------------------------------------------------
@pytest.mark.parametrize("flag, value, message", [("--img_size", "7", "img_size=7 is not a multiple"),
                                                  ("--num_frames", "3", "num_frames=3 is not a multiple")])
def test_tiny_geometry_is_refused_before_a_run_folder_exists(tmp_path, capsys, flag, value, message):
    err = _error(capsys, "train", flag, value, "--output_dir", str(tmp_path / "o"), "--run_name", "x")
    assert message in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError):
        RunConfig(backbone="tiny", img_size=40)


@pytest.mark.parametrize("argv", [["--num_videos", "0"], ["--size", "8"]])
def test_demo_data_values_are_checked(tmp_path, capsys, argv):
    err = _error(capsys, "demo-data", "--out", str(tmp_path / "d"), *argv)
    assert "num_videos >= 1 and size >= 32" in err and not (tmp_path / "d").exists()


def test_a_missing_config_file_says_what_to_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _error(capsys, "train", "--config", "nope.json")
    assert f"config file {tmp_path / 'nope.json'} does not exist" in err and "outputs/<run_name>/config.json" in err


def test_export_without_test_videos_says_how_in_one_line(demo_root, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(demo_root, data)
    (data / "splits.csv").write_text("video,split\n" + "".join(f"{p.stem},train\n" for p in (data / "Videos").iterdir()))
    err = _error(capsys, "export", "--data_root", str(data), "--out", str(tmp_path / "x"), "--backbone", "tiny",
                 "--img_size", "32", "--output_dir", str(tmp_path / "o"))
    assert err.startswith("error: fold 1: no test videos. Fix: give fold 1 some test videos: export with --folds K")
    assert "--test_fraction" in err and "splits.csv" in err
