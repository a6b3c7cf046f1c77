"""Nothing lost, nothing cryptic: runs, caches and files under faults and bad input.

One section per class of problem (numbered as in the robustness review): existing runs, locks,
the demo folder, run names, the feature cache, Ctrl-C, vanished videos, the hub probe, one-line
errors, unreadable files, config values, silent label loss, file permissions.
"""
from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import kit.data.demo as demo
from kit import errors, files
from kit.__main__ import main, run_command
from kit.config import RunConfig, check_clip_geometry, check_task_weights
from kit.data import DataError, build_vocab, load_records, validate
from kit.data.windows import Window, WindowDataset
from kit.errors import ConfigError, KitError, RunError, RunInterrupted, RunLocked
from kit.features import hub
from kit.features.cache import FeatureCache
from kit.data.dataset import run_records
from kit.temporal import runs

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(backbone="tiny", img_size=32, train_T=48, val_T=48, batch_size=4, epochs=1, tcn_layers=2,
            tcn_channels=16, pose_dim=16, warmup_steps=1)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def base(demo_root, outputs):
    """One tiny 1-epoch run on the 6-video demo data: ``(cfg, FitResult)``; tests copy it before changing it."""
    from kit.temporal.train import fit
    cfg = RunConfig(data_root=str(demo_root), output_dir=str(outputs), run_name="base", **TINY)
    return cfg, fit(cfg)


def copy_run(base, name: str) -> Path:
    cfg, result = base
    dst = result.run_dir.parent / name
    shutil.copytree(result.run_dir, dst)
    return dst


def kit_cli(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1", **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "kit", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


# --- 1. training again under an existing run_name ------------------------------------------------------
def test_training_again_refuses_then_overwrite_moves_the_old_run_aside(base):
    from kit.temporal.train import fit
    cfg, result = base
    with pytest.raises(RunError, match=r"--resume.*--overwrite"):
        fit(cfg)
    run = copy_run(base, "again")
    (run / "notes.txt").write_text("mine")  # not the kit's: must stay where it is
    old_best = (run / "best.pt").read_bytes()
    new = fit(cfg.replace(run_name="again", overwrite=True))
    aside = [p for p in run.iterdir() if p.name.startswith(".replaced-")]
    assert len(aside) == 1
    assert {"config.json", "history.csv", "metrics.json", "last.pt", "best.pt", "train.log"} <= {
        p.name for p in aside[0].iterdir()}
    assert (aside[0] / "best.pt").read_bytes() == old_best  # moved, intact, never deleted
    assert (run / "notes.txt").read_text() == "mine" and not (aside[0] / "notes.txt").exists()
    assert len(pd.read_csv(run / "history.csv")) == len(new.history) == 1  # no rows of the old run
    assert RunConfig.load(run / "config.json").overwrite is False  # a copied config.json cannot overwrite again
    with pytest.raises(ConfigError, match="exclude each other"):
        RunConfig(resume=True, overwrite=True)


def test_a_run_that_never_finished_an_epoch_may_be_started_again(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text("{}")  # what a run killed while loading its data leaves
    with runs.open_run(RunConfig(output_dir=str(tmp_path), run_name="r")) as opened:
        assert opened.dir == run and opened.replaced is None


# --- 2. one writer per run folder; fit returns what it computed -----------------------------------------
def test_second_writer_is_refused_and_a_stale_lock_taken_over(tmp_path, caplog):
    run = tmp_path / "r"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from kit.temporal.runs import lock_run
        with lock_run({str(run)!r}, "train"):
            print("locked", flush=True)
            time.sleep(120)
    """)], env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=rf"in use by process {holder.pid} .*train.*another run_name"):
            with runs.open_run(RunConfig(output_dir=str(tmp_path), run_name="r")):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run / runs.LOCK).is_file()  # a killed holder leaves its lock file behind...
    with caplog.at_level(logging.WARNING, logger="kit"):
        with runs.open_run(RunConfig(output_dir=str(tmp_path), run_name="r")):  # ...which is stale: taken over
            assert json.loads((run / runs.LOCK).read_text())["pid"] == os.getpid()
            with pytest.raises(RunLocked):  # and now held by us: a second writer, even in-process, is refused
                with runs.lock_run(run, "evaluate"):
                    pass
    assert f"stale lock of process {holder.pid}" in caplog.text
    assert not (run / runs.LOCK).exists()


def test_fit_returns_history_and_metrics_from_memory(base, monkeypatch):
    import kit.temporal.train as train
    cfg, result = base
    assert result.metrics == json.loads((result.run_dir / "metrics.json").read_text())
    pd.testing.assert_frame_equal(result.history, pd.read_csv(result.run_dir / "history.csv"), check_dtype=False)

    def no_reading(*a, **k):
        raise AssertionError("fit re-read a file it had written")
    monkeypatch.setattr(train, "read_history", no_reading)
    monkeypatch.setattr(train, "_read_metrics", no_reading)
    again = train.fit(cfg.replace(run_name="memory"))
    assert again.metrics["epoch"] == 1 and len(again.history) == 1


# --- 3. demo-data never writes over a user's folder -------------------------------------------------------
def test_demo_data_refuses_a_users_folder(data_copy, tmp_path, capsys):
    (data_copy / "splits.csv").write_text("video,split\ndemo_000,train\ndemo_001,val\n")
    before = (data_copy / "splits.csv").read_bytes()
    with pytest.raises(demo.DemoFolderError, match="not generated by the kit"):
        demo.make_demo_data(data_copy, num_videos=1)
    assert main(["demo-data", "--out", str(data_copy), "--num_videos", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and str(data_copy) in err
    assert (data_copy / "splits.csv").read_bytes() == before and not (data_copy / demo.OWNER).exists()
    (tmp_path / "empty").mkdir()
    made = demo.make_demo_data(tmp_path / "empty", num_videos=1, size=32)
    assert demo.is_demo_folder(made) and demo.make_demo_data(made, num_videos=1, size=32) == made  # ours: regenerated
    legacy = tmp_path / "legacy"  # a demo folder of an earlier kit: only its .complete marks it
    shutil.copytree(made, legacy)
    (legacy / demo.OWNER).unlink()
    assert demo.is_demo_folder(legacy)
    demo.make_demo_data(legacy, num_videos=1, size=32)
    (tmp_path / "f").write_text("x")
    with pytest.raises(demo.DemoFolderError, match="is a file"):
        demo.make_demo_data(tmp_path / "f")


# --- 4. run names stay inside output_dir -----------------------------------------------------------------
@pytest.mark.parametrize("name,why", [("a/b", "path separator"), ("../up", "path separator"),
                                      ("/abs/path", "path separator"), ("..", "starts with '.'"),
                                      (".hidden", "starts with '.'"), ("   ", "is empty"), (" x", "surrounding"),
                                      ("x" * 256, "256 bytes"), ("é" * 128, "256 bytes"),
                                      ("demo_data", "demo dataset")])
def test_bad_run_names_are_rejected_with_the_rule(name, why):
    with pytest.raises(ConfigError, match=why) as e:
        RunConfig(run_name=name)
    assert "must be one folder name inside output_dir" in str(e.value)


def test_run_dir_rechecks_a_name_set_behind_the_configs_back(tmp_path):
    cfg = RunConfig(output_dir=str(tmp_path), run_name="ok")
    cfg.run_name = "../escape"  # a plain attribute write skips __post_init__
    with pytest.raises(ConfigError, match="path separator"):
        runs.run_dir(cfg)
    assert not (tmp_path.parent / "escape").exists()


# --- 5. a corrupted feature-cache entry is a miss ----------------------------------------------------------
def test_unreadable_cache_entries_are_removed_and_recomputed(tmp_path, caplog):
    cache = FeatureCache("fp", tmp_path)
    for k in ("a", "b", "c"):
        cache.put(k, torch.ones(2, 3))
    entry = lambda k: cache.dir / f"{k}.pt"  # noqa: E731
    entry("a").write_bytes(entry("a").read_bytes()[:40])  # truncated (a full disk, a killed writer)
    entry("b").write_bytes(b"garbage")
    files.save_checkpoint(entry("c"), {"features": torch.ones(2, 3), "fingerprint": "another backbone"})
    fresh = FeatureCache("fp", tmp_path)
    with caplog.at_level(logging.WARNING, logger="kit"):
        assert "a" not in fresh and fresh.get("b") is None and fresh.get("c") is None
    assert not any(entry(k).exists() for k in "abc") and fresh.removed == 3
    assert caplog.text.count("feature cache: unreadable entry") == 1  # warned once


def test_training_survives_a_corrupted_cache_entry(base, caplog):
    """The windowed path's cache entries, and the whole-video path's feature files: a damaged one is redone."""
    from kit.temporal.train import fit
    cfg, _ = base
    windows = cfg.replace(pipeline="windows", run_name="windows")
    fit(windows)
    entries = sorted((Path(cfg.output_dir) / ".feature_cache").rglob("*.pt"))
    assert entries, "the windowed run filled the cache"
    entries[0].write_bytes(entries[0].read_bytes()[:30])
    with caplog.at_level(logging.WARNING, logger="kit"):
        result = fit(windows.replace(run_name="corrupt-cache"))
    assert "unreadable entry" in caplog.text and np.isfinite(result.history.train_loss).all()
    assert entries[0].is_file()  # recomputed and stored again
    stored = sorted((Path(cfg.output_dir) / "features").rglob("*.npy"))
    assert stored, "the base run (whole videos) extracted its features"
    stored[0].write_bytes(stored[0].read_bytes()[:200])  # cut short: the header is intact, the data is not
    result = fit(cfg.replace(run_name="corrupt-store"))
    assert np.isfinite(result.history.train_loss).all() and np.load(stored[0]).shape[1] > 0  # extracted again


# --- 6. Ctrl-C says what was saved and exits 130 ---------------------------------------------------------
def test_interrupt_names_the_saved_epoch_and_the_resume_command(tmp_path):
    cfg = RunConfig(output_dir=str(tmp_path), run_name="r", epochs=9)
    with pytest.raises(RunInterrupted, match="no epoch of run 'r' finished"):
        with runs.open_run(cfg):
            raise KeyboardInterrupt
    files.save_checkpoint(tmp_path / "r" / "last.pt", {"epoch": 3, "w": torch.zeros(2)})
    with pytest.raises(RunInterrupted) as e:
        with runs.open_run(cfg.replace(overwrite=True)):
            files.save_checkpoint(tmp_path / "r" / "last.pt", {"epoch": 4, "w": torch.zeros(2)})
            raise KeyboardInterrupt
    assert f"last.pt holds epoch 4 of 9; `python -m kit train --run_name r --output_dir {tmp_path} --resume`" \
        in str(e.value)
    assert "interrupted: last.pt holds epoch 4" in (tmp_path / "r" / "train.log").read_text()
    assert not isinstance(e.value, Exception)  # `except Exception` never swallows a Ctrl-C


def test_ctrl_c_during_training_exits_130_with_one_message(demo_root, tmp_path):
    flags = ["train", "--data_root", str(demo_root), "--output_dir", str(tmp_path), "--run_name", "sig",
             *[f"--{k}={v}" for k, v in {**TINY, "epochs": 500}.items()]]
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an ignored
    # SIGINT ignored: give the child the default disposition, as a terminal's Ctrl-C finds it.
    proc = subprocess.Popen([sys.executable, "-m", "kit", *flags], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    history = tmp_path / "sig" / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not (history.is_file() and history.stat().st_size):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: last.pt holds epoch ") and "--run_name sig" in last and "--resume" in last
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    epoch = int(last.split("epoch ")[1].split()[0])
    assert files.load_checkpoint(tmp_path / "sig" / "last.pt")["epoch"] == epoch


# --- 7. videos that vanish or change; evaluation needs only its split --------------------------------------
def test_video_deleted_or_changed_after_loading_names_the_file(data_copy):
    recs = load_records(data_copy)
    ds = WindowDataset(recs, build_vocab(recs, ["action"]), [Window(0, 0, 32), Window(1, 0, 32)], img_size=32)
    shutil.copy(data_copy / "Videos" / "demo_001.mp4", data_copy / "Videos" / "demo_000.mp4")  # replaced
    os.utime(data_copy / "Videos" / "demo_000.mp4", ns=(1, 1))
    with pytest.raises(DataError, match=r"demo_000\.mp4: the video changed after its records were loaded"):
        ds[0]
    (data_copy / "Videos" / "demo_001.mp4").unlink()
    with pytest.raises(DataError, match=r"demo_001\.mp4: video not found") as e:
        ds[1]
    assert isinstance(e.value, FileNotFoundError)


def test_evaluating_val_needs_only_the_val_videos(base, tmp_path):
    from kit.results.evaluate import evaluate
    cfg, result = base
    data = tmp_path / "data"
    shutil.copytree(cfg.data_root, data, ignore=shutil.ignore_patterns(".*"))
    run = copy_run(base, "eval-val-only")
    saved = RunConfig.load(run / "config.json")
    saved.replace(data_root=str(data)).save(run / "config.json")
    split = json.loads((run / "splits.json").read_text())
    for stem in split["train"]:
        (data / "Videos" / f"{stem}.mp4").unlink()
    assert run_records(saved.replace(data_root=str(data)), stems=split["val"])[0].stem == split["val"][0]
    res = evaluate(run, split="val")
    assert res["videos"] == len(split["val"])
    with pytest.raises(DataError, match=rf"{split['train'][0]}\.{{mp4.*video not found"):
        evaluate(run, split="train")


# --- 8. the hub probe: a proxy or captive portal is offline, decided in seconds -----------------------------
class _Hub(http.server.BaseHTTPRequestHandler):
    status, headers = 503, {}

    def do_HEAD(self):
        self.send_response(self.status)
        for k, v in self.headers_out.items():
            self.send_header(k, v)
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *a):
        pass


def _serve(status: int, headers: dict) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = type("H", (_Hub,), {"status": status, "headers_out": headers})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _silent() -> tuple[socket.socket, int]:
    """Accepts connections and never answers (a stuck proxy)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held = []

    def accept():
        while True:
            try:
                held.append(sock.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    return sock, sock.getsockname()[1]


def _refusing_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_probe_tells_the_hub_from_a_proxy_or_portal(monkeypatch):
    import huggingface_hub.constants as hf
    servers = {"hub": _serve(200, {"X-Repo-Commit": "0" * 40, "ETag": "x"}),
               "missing repo": _serve(404, {"X-Error-Code": "RepoNotFound"}),
               "503": _serve(503, {}), "portal": _serve(200, {"Content-Type": "text/html"})}
    try:
        got = {}
        for name, (_, port) in servers.items():
            monkeypatch.setattr(hf, "ENDPOINT", f"http://127.0.0.1:{port}")
            got[name] = hub.probe(timeout=5)[0]
    finally:
        for server, _ in servers.values():
            server.shutdown()
    assert got == {"hub": True, "missing repo": True, "503": False, "portal": False}


HUB_SCRIPT = textwrap.dedent("""
    import json, os, time
    import transformers, timm  # imported before the clock starts: the bound is on the decision
    import huggingface_hub.constants as hf
    from kit.features import hub
    from kit.features.backbones import load_backbone
    t0 = time.perf_counter()
    try:
        load_backbone("auto")
        result = "loaded"
    except RuntimeError as e:
        result = str(e)
    print(json.dumps({"seconds": time.perf_counter() - t0, "result": result, "reason": hub.offline_reason(),
                      "env": os.environ.get("HF_HUB_OFFLINE"), "constant": hf.HF_HUB_OFFLINE}))
""")


def test_auto_chain_decides_offline_fast_behind_bad_networks(tmp_path):
    server, p503 = _serve(503, {})
    silent, psilent = _silent()
    env = {k: v for k, v in os.environ.items() if k.upper() not in (
        "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_HOME", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    env.update(HF_HOME=str(tmp_path / "hf"), NO_PROXY="127.0.0.1,localhost", PYTHONPATH=str(ROOT))
    ports = {"503": p503, "accepts, never answers": psilent, "refused": _refusing_port()}
    try:
        procs = {name: subprocess.Popen([sys.executable, "-c", HUB_SCRIPT], text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env={**env, "HF_ENDPOINT": f"http://127.0.0.1:{port}"})
                 for name, port in ports.items()}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, (name, err[-3000:])
            got = json.loads(out.strip().splitlines()[-1])
            assert got["result"].startswith("No backbone could be loaded"), (name, got)
            assert got["seconds"] < 20, (name, got)  # generous: the probe gives up after 4 s
            assert got["env"] == "1" and got["constant"] is True, (name, got)  # the rest of the process is offline
            assert got["reason"], name
    finally:
        server.shutdown()
        silent.close()


def test_network_failure_later_turns_the_process_offline(monkeypatch):
    import huggingface_hub.constants as hf
    monkeypatch.setattr(hub, "_decision", {"online": True, "reason": "HTTP 200 from the hub"})
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub.record_failure(ValueError("repo has no such file"))  # not the network: nothing changes
    assert hub.hub_online() and not hf.HF_HUB_OFFLINE
    try:
        raise OSError("We couldn't connect to the hub") from ConnectionResetError("reset by peer")
    except OSError as e:
        hub.record_failure(e)
    assert not hub.hub_online() and hf.HF_HUB_OFFLINE and os.environ["HF_HUB_OFFLINE"] == "1"


# --- 9. expected failures: one line, exit 1; --debug: the traceback; bugs keep theirs --------------------------
def test_cli_errors_are_one_line(base, tmp_path, capsys):
    cfg, result = base

    def error_of(argv) -> str:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err, err
        return err
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "a_file").write_text("x")
    assert "does not exist" in error_of(["train", "--config", str(tmp_path / "missing.json")])
    assert "not valid JSON" in error_of(["train", "--config", str(tmp_path / "bad.json")])
    assert "is a folder" in error_of(["train", "--config", str(tmp_path)])
    assert "is a file, not a folder" in error_of(["train", "--output_dir", str(tmp_path / "a_file"), "--epochs", "1"])
    run = copy_run(base, "cli-resume")
    assert "lr=0.5" in error_of(["train", "--output_dir", cfg.output_dir, "--run_name", "cli-resume", "--resume",
                                 "--lr", "0.5"])
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:100])
    err = error_of(["train", "--output_dir", cfg.output_dir, "--run_name", "cli-resume", "--resume"])
    assert "cannot read checkpoint" in err and "last.pt" in err
    assert "--resume" in error_of(["train", "--output_dir", cfg.output_dir, "--run_name", "base"])
    assert "no videos in split 'nope'" in error_of(["evaluate", "--run", str(result.run_dir), "--split", "nope"])
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--batch_size", "0"])
    assert e.value.code == 2 and "--batch_size: must be >= 1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="batch_size"):
        from kit.results.evaluate import evaluate
        evaluate(result.run_dir, batch_size=0)


def test_missing_backbone_is_a_message_not_a_traceback(demo_root, tmp_path, monkeypatch, capsys):
    import kit.features.backbones as kb
    (tmp_path / "hub").mkdir()
    monkeypatch.setattr(kb, "hf_cache", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(kb, "_hub_online", lambda: False)
    assert main(["train", "--data_root", str(demo_root), "--backbone", "videomae", "--output_dir", str(tmp_path),
                 "--run_name", "nobackbone", "--epochs", "1"]) == 1
    err = capsys.readouterr().err  # the run's [info] lines, then the error
    assert "\nerror: No backbone could be loaded (backbone='videomae')" in err and "Traceback" not in err
    assert "BackboneError" in (tmp_path / "nobackbone" / "train.log").read_text()  # the traceback went to the log


class _BadItems(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        raise DataError("- /data/Videos/x.mp4: frame 7 does not decode. Fix: re-encode the video.")


def test_errors_inside_dataloader_workers_are_unwrapped(capsys):
    loader = torch.utils.data.DataLoader(_BadItems(), num_workers=1)
    with pytest.raises(DataError) as e:
        next(iter(loader))
    assert "Traceback" in str(e.value)  # what torch hands over: the worker's traceback pasted in
    inner = errors.unwrap(e.value)
    assert str(inner) == "- /data/Videos/x.mp4: frame 7 does not decode. Fix: re-encode the video."
    assert isinstance(inner, DataError) and errors.is_expected(e.value)

    def cmd(argv):
        next(iter(torch.utils.data.DataLoader(_BadItems(), num_workers=1)))
    assert run_command(cmd, []) == 1
    err = capsys.readouterr().err
    assert err == "error: - /data/Videos/x.mp4: frame 7 does not decode. Fix: re-encode the video.\n"
    with pytest.raises(DataError):  # --debug: the whole story
        run_command(cmd, [], debug=True)

    def bug(argv):
        raise ValueError("an actual bug")
    with pytest.raises(ValueError, match="an actual bug"):  # a bug keeps its traceback
        run_command(bug, [])


def test_debug_flag_shows_the_traceback_in_a_real_shell(tmp_path):
    plain = kit_cli("train", "--config", str(tmp_path / "missing.json"), timeout=120)
    assert plain.returncode == 1 and plain.stderr.strip().count("\n") == 0
    assert plain.stderr.startswith("error: config file") and "Traceback" not in plain.stderr
    debug = kit_cli("train", "--debug", "--config", str(tmp_path / "missing.json"), timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr
    helped = kit_cli("evaluate", "--help", timeout=120)
    assert helped.returncode == 0 and "--debug" in helped.stdout


# --- 10. files the OS will not read ---------------------------------------------------------------------------
def _permissions_enforced(path: Path) -> bool:
    return not os.access(path, os.R_OK)


def test_annotation_that_is_a_folder_or_unreadable(data_copy):
    csv = data_copy / "Annotations" / "demo_000.csv"
    os.chmod(csv, 0)
    if _permissions_enforced(csv):
        with pytest.raises(DataError, match=r"demo_000\.csv: cannot be read: permission denied.*chmod"):
            load_records(data_copy)
    os.chmod(csv, 0o644)
    csv.unlink()
    csv.mkdir()  # a folder named like the CSV (root ignores permissions: this the OS refuses to everyone)
    with pytest.raises(DataError, match=r"demo_000\.csv: cannot be read: it is a folder, not a file"):
        load_records(data_copy)


def test_video_that_is_a_folder_or_unreadable_is_not_called_damaged(data_copy):
    video = data_copy / "Videos" / "demo_000.mp4"
    os.chmod(video, 0)
    if _permissions_enforced(video):
        with pytest.raises(DataError, match=r"demo_000\.mp4: cannot be read: permission denied") as e:
            load_records(data_copy)
        assert "re-encode" not in str(e.value)
    os.chmod(video, 0o644)
    video.unlink()
    video.mkdir()
    with pytest.raises(DataError, match=r"demo_000\.mp4: is a folder, not a video file") as e:
        load_records(data_copy)
    assert "damaged" not in str(e.value)


def test_npz_saved_as_npy_is_named(data_copy):
    pose = data_copy / "Poses" / "demo_000.npy"
    kp = np.load(pose)
    with open(pose, "wb") as f:
        np.savez(f, keypoints=kp)
    with pytest.raises(DataError, match=r"demo_000\.npy: is a \.npz archive \(arrays \['keypoints'\]\).*numpy\.save"):
        load_records(data_copy)


# --- 11. config values, not only types --------------------------------------------------------------------
@pytest.mark.parametrize("weights,pattern", [({"action": "high"}, "must be a number"), ({"action": True}, "number"),
                                             ({"action": -1.0}, ">= 0"), ({"action": float("nan")}, "finite"),
                                             ({"action": float("inf")}, "finite"), ({"": 1.0}, "task names")])
def test_task_weights_values(weights, pattern):
    with pytest.raises(ConfigError, match=pattern):
        RunConfig(task_weights=weights)


def test_task_weights_names_and_clip_geometry(tmp_path):
    check_task_weights({"action": 2.0, "stance": 0.0}, ["action", "stance"])
    with pytest.raises(ConfigError, match=r"\['stnce'\].*action, stance"):
        check_task_weights({"stnce": 1.0}, ["action", "stance"])
    with pytest.raises(ConfigError, match="every task weight 0"):
        check_task_weights({"action": 0}, ["action"])
    with pytest.raises(ConfigError, match="img_size=100 .* patch size 16 .* use 96 or 112"):
        check_clip_geometry(100, 16, 16, 2, "videomae")
    with pytest.raises(ConfigError, match="num_frames=15 .* tubelet size 2 .* use 14 or 16"):
        check_clip_geometry(224, 15, 16, 2, "videomae")
    from _tiny_models import save_tiny_videomae
    from kit.features.backbones import load_backbone
    save_tiny_videomae(tmp_path / "ckpt")
    with pytest.raises(KitError, match="img_size=40 is not a multiple of the videomae backbone's patch size 16"):
        load_backbone("videomae", path=tmp_path / "ckpt", img_size=40)
    with pytest.raises(ConfigError, match="finite"):
        RunConfig(lr=float("nan"))


def test_task_weight_for_a_missing_task_stops_fit(demo_root, tmp_path):
    from kit.temporal.train import fit
    with pytest.raises(ConfigError, match="stnce"):
        fit(RunConfig(data_root=str(demo_root), output_dir=str(tmp_path), run_name="tw",
                      task_weights={"stnce": 1.0}, **TINY))


# --- 12. labels that would be lost silently: warnings with counts --------------------------------------------
def _edit(root: Path, stem: str, fn) -> Path:
    path = root / "Annotations" / f"{stem}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(df).to_csv(path, index=False)
    return path


def warnings_of(root) -> pd.DataFrame:
    report = validate(root)
    assert set(report.level) <= {"warning"}, report
    return report


def test_na_cells_are_unlabeled_with_a_count(data_copy, caplog):
    def na(d):
        d.loc[3, "action"], d.loc[5, "action"], d.loc[8, "stance"] = "NA", "#N/A", "N/A"
        return d
    _edit(data_copy, "demo_000", na)
    with caplog.at_level(logging.WARNING, logger="kit"):
        recs = load_records(data_copy)
    assert recs[0].labels["action"][3] == recs[0].labels["action"][5] == recs[0].labels["stance"][8] == ""
    assert "NA" not in build_vocab(recs, ["action"])["action"]
    text = "3 label cell(s) hold '#N/A', 'N/A', 'NA' (action: 2, stance: 1; first on line 5): treated as unlabeled"
    assert text in caplog.text
    assert warnings_of(data_copy).problem.tolist() == [text]


def test_sparse_csv_warns_with_the_count(data_copy):
    path = _edit(data_copy, "demo_001", lambda d: d.iloc[:5])
    n = load_records(data_copy)[1].num_frames
    report = warnings_of(data_copy)
    assert report.file.tolist() == [str(path)]
    assert f"gives an action to 5 of the video's {n} frames" in report.problem[0]


def test_duplicated_column_is_an_error_naming_it(data_copy):
    path = data_copy / "Annotations" / "demo_000.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",action"] + [ln + ",idle" for ln in lines[1:]]) + "\n")
    with pytest.raises(DataError, match=r"column 'action' appears 2 times \(columns \[2, 4\]\).*'action\.1'"):
        load_records(data_copy)


def test_pose_files_and_folders_in_another_case_are_used(data_copy):
    (data_copy / "Poses" / "demo_000.npy").rename(data_copy / "Poses" / "demo_000.NPY")
    (data_copy / "Poses").rename(data_copy / "poses")
    (data_copy / "Videos").rename(data_copy / "videos")
    recs = load_records(data_copy)
    assert [r.pose_path.name for r in recs] == ["demo_000.NPY", "demo_001.npy"] and all(
        r.keypoints is not None for r in recs)
    np.save(data_copy / "poses" / "DEMO_001.npy", np.load(data_copy / "poses" / "demo_001.npy"))
    (data_copy / "poses" / "demo_001.npy").unlink()
    np.save(data_copy / "poses" / "ghost.npy", np.zeros((3, 17, 3)))
    assert load_records(data_copy)[1].pose_path.name == "DEMO_001.npy"
    report = warnings_of(data_copy)
    assert any("matches video demo_001 only up to case" in p for p in report.problem)
    assert any("1 pose file(s) match no video" in p and "ghost.npy" in p for p in report.problem)


def test_no_validation_video_warns_and_metrics_stay_metrics(data_copy, tmp_path, caplog):
    from kit.temporal.train import fit
    (data_copy / "splits.csv").write_text("video,split\ndemo_000,train\ndemo_001,train\n")
    report = warnings_of(data_copy)
    assert len(report) == 1 and "no validation video (0 of 2 videos)" in report.problem[0]
    with caplog.at_level(logging.WARNING, logger="kit"):
        result = fit(RunConfig(data_root=str(data_copy), output_dir=str(tmp_path), run_name="noval", **TINY))
    assert "no validation video" in caplog.text
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved == result.metrics and set(saved) == {"epoch", "train_loss"}  # no val_s timing posing as a metric


def test_nan_is_written_as_null(tmp_path):
    files.write_json(tmp_path / "m.json", {"acc": float("nan"), "f1": [1.0, float("inf")], "n": np.float64("nan")})
    assert json.loads((tmp_path / "m.json").read_text()) == {"acc": None, "f1": [1.0, None], "n": None}


# --- 13. files keep the umask's permissions ----------------------------------------------------------------
def test_written_files_keep_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        files.write_json(tmp_path / "a.json", {"x": 1})
        files.save_checkpoint(tmp_path / "a.pt", {"x": torch.zeros(1)})
        (tmp_path / "b.json").write_text("{}")  # what a plain open() gives
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a.json") == mode(tmp_path / "a.pt") == mode(tmp_path / "b.json") == 0o640
    os.chmod(tmp_path / "a.json", 0o600)  # a file the user restricted keeps its mode when rewritten
    files.write_json(tmp_path / "a.json", {"x": 2})
    assert mode(tmp_path / "a.json") == 0o600


def test_a_runs_files_share_one_mode(base):
    _, result = base
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in result.run_dir.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes
