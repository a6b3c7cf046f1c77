"""Experiment tracking (``report_to``): a tiny fit() writes TensorBoard events that TensorBoard reads back.

No network: the events are read with TensorBoard's own ``EventAccumulator`` from the run folder.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from kit.config import RunConfig

pytest.importorskip("tensorboard")


@pytest.fixture(scope="module")
def tracked(demo_root, tmp_path_factory):
    """Two epochs of the tiny backbone on the demo data with report_to='tensorboard'."""
    from kit.temporal.train import fit

    out = tmp_path_factory.mktemp("tracked")
    cfg = RunConfig(data_root=str(demo_root), backbone="tiny", img_size=32, epochs=2, batch_size=2,
                    tcn_layers=2, tcn_channels=16, pose_dim=16, warmup_steps=1, output_dir=str(out), run_name="tb",
                    report_to="tensorboard")
    return fit(cfg)


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_run_folder_holds_steps_epochs_figures_and_config(tracked):
    folder = tracked.run_dir / "tensorboard"
    assert folder.is_dir(), "report_to='tensorboard' should write into <run>/tensorboard"
    ev = events(folder)
    tags = ev.Tags()
    history = pd.read_csv(tracked.run_dir / "history.csv")

    # one loss and lr point per optimizer step, on the step axis
    loss = ev.Scalars("train/loss")
    steps = int(history["global_batches"].sum())  # grad_accum 1: one optimizer step per batch
    assert [e.step for e in loss] == list(range(1, steps + 1))
    lrs = [e.value for e in ev.Scalars("train/lr")]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] < lrs[0], "warm-up of 1 step, then cosine decay"

    # every number of history.csv, at the step where the epoch ended
    acc_ = ev.Scalars("val/action_acc")
    assert [e.value for e in acc_] == pytest.approx(history["val_action_acc"].tolist(), rel=1e-5)
    ends = history["global_batches"].cumsum().tolist()
    assert [e.step for e in acc_] == ends
    assert [e.value for e in ev.Scalars("epoch/train_loss")] == pytest.approx(history["train_loss"].tolist(),
                                                                              rel=1e-5)
    assert "val/stance_f1@50" in tags["scalars"] and "epoch/val_s" in tags["scalars"]

    # the figures, once per epoch and task
    for tag in ("confusion/action", "timeline/action", "confusion/stance", "timeline/stance"):
        assert tag in tags["images"], f"{tag} missing: {tags['images']}"
        imgs = ev.Images(tag)
        assert [i.step for i in imgs] == ends and imgs[0].width > 100 and imgs[0].height > 100

    # the config, as text (the hparams live in a subfolder accelerate makes)
    text = ev.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n"))["report_to"] == "tensorboard"


def test_report_to_none_touches_nothing_and_bad_values_are_refused(tmp_path):
    from kit.temporal import tracking

    class NoAccelerator:  # any attribute access would fail: "none" must not touch the accelerator
        __slots__ = ()

    tracking.start(NoAccelerator(), RunConfig(report_to="none"), tmp_path)
    assert list(tmp_path.iterdir()) == []

    class Untracked:
        trackers, sync_gradients = [], True

        def log(self, *a, **k):
            raise AssertionError("logged without a tracker")

    tracking.log_step(Untracked(), 1.0, None, 1)
    tracking.log_epoch(Untracked(), {"epoch": 1, "val_action_acc": 50.0}, 1)
    with pytest.raises(ValueError, match="report_to"):
        RunConfig(report_to="wandb")


def test_trackio_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    import sys

    from kit.temporal import tracking

    monkeypatch.setitem(sys.modules, "trackio", None)  # `import trackio` now raises ImportError
    with pytest.raises(ImportError, match="pip install trackio"):
        tracking.start(object(), RunConfig(report_to="trackio"), tmp_path)
