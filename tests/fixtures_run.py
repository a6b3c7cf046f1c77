"""A short trained tiny run, shared by tests/test_evaluate.py and tests/test_plots.py.

Test modules load this with ``pytest_plugins = ["fixtures_run"]`` (tests/ is on ``sys.path``
under pytest's default import mode), so pytest registers the fixture once and trains once per
session however many modules use it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def trained_run(demo_root, tmp_path_factory) -> Path:
    """``<tmp>/outputs/t``: 2 epochs of the tiny backbone on the 6-video demo data, evaluated on val."""
    from kit.config import RunConfig
    from kit.results.evaluate import evaluate
    from kit.temporal.train import fit

    out = tmp_path_factory.mktemp("outputs")
    cfg = RunConfig(data_root=str(demo_root), backbone="tiny", img_size=64, epochs=2, train_T=64, val_T=64,
                    batch_size=4, output_dir=str(out), run_name="t", tcn_layers=4, tcn_channels=32)
    run = fit(cfg).run_dir
    evaluate(run, split="val")
    return run
