"""The four notebooks: thin, parameterised like RunConfig, committed clean, and they run headless.

The static checks read the committed ``.ipynb`` files (the source of the notebooks). The
execution test runs 01 -> 04 in order with papermill on the demo data, generated into a
temporary ``output_dir``, with small windows and 2 epochs; 03 runs from ``notebooks/`` (as in
``cd notebooks && papermill 03_train.ipynb out.ipynb``), the others from the repository root.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kit.config import RunConfig, field_names, field_types

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_data_inspection", "02_backbone_check", "03_train", "04_evaluate"]
# Parameters that are not RunConfig fields: each means the same in every notebook that has it.
NOTEBOOK_ONLY = {
    "run_dir": str,  # 04: the run folder to evaluate ("" = the newest under output_dir)
    "split": str,  # 04: train | val | test
    "checkpoint": str,  # 04: best | last
    "video_index": int,  # 01, 02: which video (sorted by name) to look at
    "window_start": int,  # 01: first frame of the window shown
}
# Notebooks whose parameters must all flow into one RunConfig(...) call (besides NOTEBOOK_ONLY
# names and the output_dir/data_root that 02 also uses for the demo data).
FEEDS_RUNCONFIG = {"02_backbone_check": {"output_dir"}, "03_train": set()}


def path_of(name: str) -> Path:
    return ROOT / "notebooks" / f"{name}.ipynb"


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(path_of(name), as_version=4)


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected exactly one cell tagged 'parameters', found {len(cells)}"
    return cells[0]


def parameters(name: str) -> dict[str, object]:
    """``{name: default}`` of the parameters cell; fails unless every statement is ``NAME[: type] = literal``."""
    src = parameters_cell(read(name)).source
    values = {}
    for stmt in ast.parse(src).body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            target, value = stmt.target.id, stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value = stmt.targets[0].id, stmt.value
        else:
            raise AssertionError(f"{name}: line {stmt.lineno} of the parameters cell is not `NAME = literal`")
        try:
            values[target] = ast.literal_eval(value)
        except ValueError:
            raise AssertionError(f"{name}: parameter {target} is not a literal: {ast.unparse(value)}") from None
        assert isinstance(values[target], (str, int, float, bool)), f"{name}: {target} is not a scalar literal"
    return values


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_are_literals_named_like_runconfig(name):
    params = parameters(name)
    assert params, f"{name}: empty parameters cell"
    types = field_types()
    for key, value in params.items():
        assert key in types or key in NOTEBOOK_ONLY, (
            f"{name}: parameter {key!r} is neither a RunConfig field nor one of {sorted(NOTEBOOK_ONLY)}")
        want = types.get(key) or NOTEBOOK_ONLY[key]
        ok = isinstance(value, bool) if want is bool else (
            isinstance(value, (int, float)) and not isinstance(value, bool) if want is float
            else isinstance(value, want) and not isinstance(value, bool))
        assert ok, f"{name}: {key} = {value!r} should be {want.__name__}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameter_defaults_are_the_kits_defaults(name):
    defaults = RunConfig()
    for key, value in parameters(name).items():
        if key in field_names():
            assert value == getattr(defaults, key), (
                f"{name}: {key} = {value!r}, but RunConfig's default is {getattr(defaults, key)!r}")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_parameter_has_one_comment_papermill_can_read(name):
    """``papermill --help-notebook`` lists each parameter with its comment as help."""
    import papermill

    src = parameters_cell(read(name)).source
    lines = [ln for ln in src.splitlines() if ln.strip()]
    assert len(lines) == len(parameters(name)), f"{name}: one parameter per line, nothing else"
    for ln in lines:
        assert "  # " in ln, f"{name}: no comment on {ln!r}"
    inferred = papermill.inspect_notebook(str(path_of(name)))
    assert list(inferred) == list(parameters(name))
    for key, p in inferred.items():
        assert p["help"], f"{name}: papermill found no help for {key} (an '=' in the comment confuses it)"


@pytest.mark.parametrize("name", sorted(FEEDS_RUNCONFIG))
def test_parameters_flow_into_runconfig(name):
    """Each parameter reaches the ``RunConfig(...)`` call, so ``-p lr 0.01`` changes the run."""
    calls = [node for c in code_cells(read(name)) for node in ast.walk(ast.parse(c.source))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RunConfig"]
    assert len(calls) == 1, f"{name}: expected one RunConfig(...) call, found {len(calls)}"
    passed = {}
    for kw in calls[0].keywords:
        used = {n.id for n in ast.walk(kw.value) if isinstance(n, ast.Name)}
        passed[kw.arg] = used
    for key in set(parameters(name)) - set(NOTEBOOK_ONLY) - FEEDS_RUNCONFIG[name]:
        assert key in passed and key in passed[key], f"{name}: parameter {key} is not passed as RunConfig({key}=...)"


def all_notebooks() -> list[Path]:
    """Every committed-looking notebook: anywhere in the repo except outputs/ and checkpoints."""
    return [p for p in ROOT.rglob("*.ipynb") if "outputs" not in p.relative_to(ROOT).parts[:1]
            and ".ipynb_checkpoints" not in p.parts and ".git" not in p.parts]


def test_notebooks_are_committed_without_outputs():
    paths = all_notebooks()
    assert {p.stem for p in paths} >= set(NOTEBOOKS)
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        assert "papermill" not in nb.metadata, f"{p}: an executed papermill copy; commit the source notebook"
        assert "widgets" not in nb.metadata, f"{p}: saved widget state; strip it (nbstripout)"
        for i, c in enumerate(code_cells(nb)):
            assert not c.outputs, f"{p}: code cell {i} has outputs; strip them (nbstripout {p.name})"
            assert c.execution_count is None, f"{p}: code cell {i} has an execution count; strip it (nbstripout)"
            assert "execution" not in c.metadata, f"{p}: code cell {i} has execution metadata; strip it"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_thin(name):
    nb = read(name)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), f"{name}: no title"
    assert nb.metadata.kernelspec.name == "python3"
    imports_kit = False
    for c in code_cells(nb):
        assert "pip install" not in c.source and not c.source.lstrip().startswith(("!", "%")), (
            f"{name}: shell or magic in a cell: {c.source[:60]!r}")
        tree = ast.parse(c.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), (
                f"{name}: defines a function or class; it belongs in kit/")
            if isinstance(node, ast.ImportFrom):
                assert all(a.name != "*" for a in node.names), f"{name}: star import"
                imports_kit |= (node.module or "").startswith("kit")
            if isinstance(node, ast.Import):
                assert all(a.name != "kit" for a in node.names), f"{name}: use explicit `from kit.x import y`"
    assert imports_kit, f"{name}: no `from kit... import ...`"
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(markdown) >= 3, f"{name}: too little explanation for the reader"


def test_gitattributes_names_the_nbstripout_filter():
    lines = (ROOT / ".gitattributes").read_text().splitlines()
    assert "*.ipynb filter=nbstripout" in [ln.strip() for ln in lines]


def test_the_nbstripout_filter_would_change_nothing():
    """The files are already what the git filter writes, so `git add` never rewrites them."""
    proc = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, all_notebooks())],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"run `nbstripout notebooks/*.ipynb` before committing:\n{proc.stdout}{proc.stderr}"


# --- executing them -------------------------------------------------------------------------------
def papermill(name: str, out: Path, cwd: Path, **params) -> nbformat.NotebookNode:
    """Runs one notebook with the papermill command line, as a user would; fails on any failing cell."""
    src = path_of(name) if cwd == ROOT else Path(os.path.relpath(path_of(name), cwd))
    args = [sys.executable, "-m", "papermill", str(src), str(out), "-k", "python3", "--no-progress-bar"]
    for k, v in params.items():
        args += ["-p", k, str(v)]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's inline backend draws PNGs
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=400)
    if proc.returncode != 0:
        raise AssertionError(f"papermill {name} failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    return nbformat.read(out, as_version=4)


def text_of(nb) -> str:
    """Everything the executed notebook printed (streams and plain-text results)."""
    parts = []
    for c in code_cells(nb):
        for o in c.outputs:
            parts.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in code_cells(nb) for o in c.outputs)


def test_notebooks_run_headless_in_order_on_the_demo_data(tmp_path):
    out = tmp_path / "outputs"  # absolute: nothing is written into the repository's outputs/
    small = dict(output_dir=out, train_T=64, img_size=64)

    nb1 = papermill("01_data_inspection", tmp_path / "01.ipynb", ROOT, **small)
    assert (out / "demo_data" / "Videos").is_dir(), "01 did not generate the demo data into output_dir"
    assert "DEMO data" in text_of(nb1) and "0 problem(s)" in text_of(nb1)
    assert images(nb1) >= 6, "01 should draw its label counts, timelines, frames, poses and one frame"

    nb2 = papermill("02_backbone_check", tmp_path / "02.ipynb", ROOT, **small)
    text = text_of(nb2)
    assert "Backbone: tiny" in text and "RANDOM" in text  # the choice and the loader's own warning
    assert "last_hidden_state" in text and "peak_memory_mb" in text

    nb3 = papermill("03_train", tmp_path / "03.ipynb", ROOT / "notebooks", **small, val_T=64, epochs=2,
                    batch_size=4, run_name="nbtest")
    run = out / "nbtest"
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    config = json.loads((run / "config.json").read_text())
    assert (config["epochs"], config["train_T"], config["img_size"], config["batch_size"]) == (2, 64, 64, 4)
    assert "DEMO data" in text_of(nb3) and images(nb3) >= 1

    nb4 = papermill("04_evaluate", tmp_path / "04.ipynb", ROOT, output_dir=out)
    result = json.loads((run / "eval_val.json").read_text())
    assert result["split"] == "val" and result["videos"] >= 1 and "action" in result
    assert any((run / "predictions").glob("*.csv"))
    assert f"Run: {run}" in text_of(nb4) and images(nb4) >= 2
