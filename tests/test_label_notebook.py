"""notebooks/06_label.ipynb: thin like the others, and headless on a trained demo run it ranks the
videos, draws the widget's view of the top suggestion as the run's draft, and touches no annotation."""
from __future__ import annotations

import hashlib

import test_notebooks as nbt

pytest_plugins = ["fixtures_run"]
NAME = "06_label"


def test_06_is_thin_and_checks_its_parameters():
    nbt.test_notebooks_are_thin(NAME)
    nbt.test_the_cell_after_the_parameters_checks_them(NAME)
    assert set(nbt.parameters(NAME)) >= {"data_root", "output_dir", "run_dir", "video", "from_prediction"}


def test_06_runs_headless_on_a_trained_demo_run(trained_run, demo_root, tmp_path):
    def digest():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (demo_root / "Annotations").iterdir()}

    before = digest()
    nb = nbt.papermill(NAME, tmp_path / "06.ipynb", nbt.ROOT / "notebooks", data_root=demo_root,
                       output_dir=trained_run.parent, run_dir=trained_run, candidates=demo_root / "Videos",
                       poses=demo_root / "Poses", top=3, img_size=64)
    text = nbt.text_of(nb)
    assert "entropy" in text and "stretch" in text, "the suggestions table"
    assert nbt.images(nb) == 1 and nbt.widgets(nb) == 0, "headless: the widget's view as one image"
    assert "task" in text and "prob" in text, "the draft's segments"
    assert (trained_run / "predict").is_dir(), "the draft comes from predict"
    assert digest() == before and not (demo_root / "Annotations_backup").exists(), "headless saves nothing"
