"""The five notebooks: thin, parameterised like RunConfig, strict about their parameters, committed
clean, and they run headless.

The static checks read the source notebooks. What git commits is checked in git's index (with the
nbstripout filter, a notebook saved with outputs in JupyterLab is stripped on ``git add``), so an
executed copy or a notebook saved in JupyterLab does not fail the suite. The execution test runs
01 -> 05 in order with papermill on the demo data, generated into a temporary ``output_dir``, with
small frames and 2 epochs; 03 runs from ``notebooks/`` (as in ``cd notebooks && papermill ...``),
the others from the repository root.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kit.config import RunConfig, field_names, field_types

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_data_inspection", "02_backbone_check", "03_train", "04_evaluate", "05_predict"]
# Parameters that are not RunConfig fields: each means the same in every notebook that has it.
NOTEBOOK_ONLY = {
    "run_dir": str,  # 04, 05: the run folder ("" = the newest under output_dir)
    "split": str,  # 04: train | val | test ("" = test when the run has one)
    "checkpoint": str,  # 04, 05: best | last
    "video_index": int,  # 01, 02, 05: which video (sorted by name) to look at
    "frame": int,  # 01: a frame of that video
    "poses_from_video": bool,  # 01: write Poses/<stem>.npy with BlazePose for videos that have none
    "probe_frames": int,  # 02: frames run through the backbone for the shapes and the timing
    "overlay": bool,  # 05: also write the annotated video
    "out": str,  # 05: output folder
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


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_cell_after_the_parameters_checks_them(name):
    """papermill injects its cell right after ``parameters``; the next one must be the check."""
    cells = read(name).cells
    i = cells.index(parameters_cell(read(name)))
    tree = ast.parse(cells[i + 1].source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "check_parameters"]
    assert len(calls) == 1, f"{name}: cell {i + 1} should call check_parameters(globals(), {name!r})"
    assert [ast.literal_eval(a) for a in calls[0].args[1:]] == [name], f"{name}: checks another notebook's parameters"
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [getattr(n, "module", None) for n in imports] == ["kit.results.notebook"], "the check imports nothing else"


def test_the_check_imports_no_heavy_module():
    """The check runs within seconds: importing it pulls in neither torch nor pandas."""
    code = ("import sys; from kit.results.notebook import check_parameters; "
            "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


# --- what git commits ---------------------------------------------------------------------------
def git(*args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, **kw)


def in_git_checkout(root: Path) -> bool:
    return shutil.which("git") is not None and git("rev-parse", "--is-inside-work-tree", cwd=root).returncode == 0


def committable_notebooks(root: Path) -> dict[str, str]:
    """``{path: text}`` of every notebook git would commit: the staged version of each one in the index
    (what ``git add`` stored, after the nbstripout filter when installed), and untracked notebooks
    that ``.gitignore`` does not cover (``git add -A`` would take them as they are)."""
    out = {}
    staged = git("ls-files", "-s", "--", "*.ipynb", cwd=root, check=True).stdout.splitlines()
    for line in staged:
        meta, path = line.split("\t", 1)
        out[path] = git("cat-file", "blob", meta.split()[1], cwd=root, check=True).stdout
    for path in git("ls-files", "--others", "--exclude-standard", "--", "*.ipynb", cwd=root, check=True).stdout.split():
        out[path] = (root / path).read_text()
    return out


def notebook_problems(path: str, text: str) -> list[str]:
    """What is wrong with a notebook as committed: outputs, counts, papermill or widget metadata."""
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    problems = []
    if "papermill" in nb.metadata:
        problems.append(f"{path}: an executed papermill copy; write executed copies into outputs/")
    if "widgets" in nb.metadata:
        problems.append(f"{path}: saved widget state; strip it (nbstripout {path})")
    for i, c in enumerate(code_cells(nb)):
        if c.outputs or c.execution_count is not None or "execution" in c.metadata:
            problems.append(f"{path}: code cell {i} has outputs or an execution count; strip it (nbstripout {path})")
    return problems


def test_committed_notebooks_are_clean(tmp_path):
    if in_git_checkout(ROOT):
        found = committable_notebooks(ROOT)
        assert {Path(p).stem for p in found} >= set(NOTEBOOKS), f"notebooks missing from git: {sorted(found)}"
    else:  # an unpacked archive: the source notebooks as they are
        found = {str(path_of(n).relative_to(ROOT)): path_of(n).read_text() for n in NOTEBOOKS}
    problems = [p for path, text in found.items() for p in notebook_problems(path, text)]
    assert not problems, "\n".join(problems)
    # byte for byte what the git filter writes, so `git add` never rewrites them (one nbstripout run)
    copies = []
    for i, (path, text) in enumerate(found.items()):
        copies.append(tmp_path / f"{i}_{Path(path).name}")
        copies[-1].write_text(text)
    proc = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, copies)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"run `nbstripout notebooks/*.ipynb` and `git add` them:\n{proc.stdout}{proc.stderr}"


@pytest.mark.skipif(not in_git_checkout(ROOT), reason="not a git checkout")
def test_executed_copies_and_saved_notebooks_do_not_fail_the_check(tmp_path):
    """The README's steps: an executed copy written into notebooks/ is ignored by git, and a notebook
    saved with outputs in JupyterLab counts as what git would commit, not as what is on disk."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    shutil.copy(path_of("04_evaluate"), repo / "notebooks" / "04_evaluate.ipynb")
    git("init", "-q", cwd=repo, check=True)
    git("add", "-A", cwd=repo, check=True)
    assert notebook_problems("", (repo / "notebooks" / "04_evaluate.ipynb").read_text()) == []

    executed = read("04_evaluate")
    last = code_cells(executed)[-1]
    last.outputs, last.execution_count = [nbformat.v4.new_output("stream", text="ran\n")], 7
    executed.metadata["papermill"] = {"parameters": {}}
    for name in ("out.ipynb", "03_train.out.ipynb", "Untitled.ipynb"):  # papermill copies, JupyterLab's new notebook
        nbformat.write(executed, repo / "notebooks" / name)
    nbformat.write(executed, repo / "notebooks" / "04_evaluate.ipynb")  # saved with outputs in JupyterLab
    found = committable_notebooks(repo)
    assert list(found) == ["notebooks/04_evaluate.ipynb"], f"executed copies are not ignored: {list(found)}"
    assert notebook_problems(*next(iter(found.items()))) == [], "the index still holds the clean notebook"

    git("add", "-A", cwd=repo, check=True)  # without the nbstripout filter installed: outputs would be committed
    problems = notebook_problems("nb", committable_notebooks(repo)["notebooks/04_evaluate.ipynb"])
    assert any("outputs" in p for p in problems) and any("papermill" in p for p in problems)
    nbformat.write(executed, repo / "notebooks" / "06_new.ipynb")  # a new numbered notebook is not ignored
    assert "notebooks/06_new.ipynb" in committable_notebooks(repo)


def test_gitattributes_names_the_nbstripout_filter():
    lines = (ROOT / ".gitattributes").read_text().splitlines()
    assert "*.ipynb filter=nbstripout" in [ln.strip() for ln in lines]


# --- strict parameters ----------------------------------------------------------------------------
def test_check_parameters_names_the_closest_valid_name_and_the_wrong_type():
    from kit.results.notebook import ParameterError, check_parameters, notebook_parameters

    types = notebook_parameters("03_train")
    assert types["epochs"] is int and types["lr"] is float and types["resume"] is bool
    ns = {name: value for name, value in parameters("03_train").items()}
    ns["In"] = ["", "data_root = ''", "# Parameters\nepoch = 5\nlr = 1\n", "check_parameters(globals(), '03_train')"]
    ns["epoch"] = 5
    ns["lr"] = 1  # an int is a fine float
    with pytest.raises(ParameterError, match=r"unknown parameter 'epoch' \(did you mean 'epochs'\?\)") as e:
        check_parameters(ns, "03_train")
    assert e.value._render_traceback_() == [f"\x1b[0;31mParameterError\x1b[0m: {e.value}"]
    assert "lr" not in str(e.value)

    ns["In"][-2] = "# Parameters\nepochs = 'five'\nresume = 'false'\nPAPERMILL_OUTPUT_PATH = 'x.ipynb'\n"
    ns.update(epochs="five", resume="false", epoch=None)
    with pytest.raises(ParameterError) as e:
        check_parameters(ns, "03_train")
    msg = str(e.value)
    assert "parameter 'epochs' must be an int (papermill: -p epochs 10), got str 'five'" in msg and "'resume' must be True or False" in msg and "PAPERMILL" not in msg

    ns.update(epochs=10, resume=False)
    for earlier in ("from kit.config import RunConfig\ncfg = RunConfig()", "result = fit(cfg)"):
        ns["In"][-2] = earlier  # cells run out of order in JupyterLab: not parameters
        check_parameters(ns, "03_train")


def papermill_run(name: str, dest: Path, cwd: Path = ROOT, **params) -> subprocess.CompletedProcess:
    """The papermill command line, as a user runs it, writing the executed copy to ``dest``."""
    src = path_of(name) if cwd == ROOT else Path(os.path.relpath(path_of(name), cwd))
    args = [sys.executable, "-m", "papermill", str(src), str(dest), "-k", "python3", "--no-progress-bar"]
    for k, v in params.items():
        args += ["-p", k, str(v)]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's inline backend draws PNGs
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=400)


def test_a_misspelled_parameter_or_a_wrong_type_stops_papermill_at_once(tmp_path):
    proc = papermill_run("03_train", tmp_path / "03.ipynb", epoch=5, lr="fast", output_dir=tmp_path)
    assert proc.returncode != 0, "papermill went on with a misspelled parameter"
    assert "unknown parameter 'epoch' (did you mean 'epochs'?)" in proc.stderr
    assert "parameter 'lr' must be a float" in proc.stderr and "got str 'fast'" in proc.stderr
    nb = nbformat.read(tmp_path / "03.ipynb", as_version=4)
    ran = [c for c in code_cells(nb) if c.execution_count is not None]
    assert [c.metadata.get("tags", []) for c in ran[:2]] == [["parameters"], ["injected-parameters"]]
    assert len(ran) == 3, "cells after the check ran"
    errors = [o for o in ran[2].outputs if o.output_type == "error"]
    assert len(errors) == 1 and len(errors[0].traceback) == 1, "the error should be one line, not a traceback"
    assert not (tmp_path / "features").exists() and not any(tmp_path.glob("run-*")), "it trained"


# --- live frontend or headless --------------------------------------------------------------------
def test_live_frontend_needs_a_jupyter_server_session_and_a_frontend_that_takes_input(monkeypatch):
    """Outside a kernel it is False; in a kernel it follows JPY_SESSION_NAME and the request's allow_stdin."""
    from jupyter_client.manager import start_new_kernel

    from kit.results.notebook import live_frontend

    monkeypatch.setenv("JPY_SESSION_NAME", "/x/03_train.ipynb")
    assert not live_frontend(), "not in a kernel"
    code = "from kit.results.notebook import live_frontend\nprint(live_frontend())"
    seen = {}
    for session in (True, False):
        env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
        if session:
            env["JPY_SESSION_NAME"] = "/x/03_train.ipynb"  # what jupyter_server gives the kernels it starts
        km, kc = start_new_kernel(kernel_name="python3", env=env)
        try:
            for stdin in (True, False):  # JupyterLab asks with allow_stdin=True; nbclient (papermill) with False
                lines = []
                kc.execute_interactive(code, allow_stdin=stdin, timeout=60,
                                       output_hook=lambda m: lines.append(m["content"].get("text", "")))
                seen[session, stdin] = "".join(lines).strip()
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    assert seen == {(True, True): "True", (True, False): "False", (False, True): "False", (False, False): "False"}


def test_log_lines_stay_on_stderr_in_a_shell(capsys):
    """Outside a kernel every line goes to stderr as before (kernels: info on stdout, see the run below)."""
    from kit.log import in_kernel, setup_logging

    log = setup_logging()
    log.info("[info] a progress line")
    log.warning("[warn] a warning")
    out, err = capsys.readouterr()
    assert not in_kernel() and out == "" and "[info] a progress line" in err and "[warn] a warning" in err


# --- executing them -------------------------------------------------------------------------------
def papermill(name: str, dest: Path, cwd: Path, **params) -> nbformat.NotebookNode:
    """Runs one notebook with the papermill command line, as a user would; fails on any failing cell."""
    proc = papermill_run(name, dest, cwd, **params)
    if proc.returncode != 0:
        raise AssertionError(f"papermill {name} failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    return nbformat.read(dest, as_version=4)


def streams(nb, name: str) -> str:
    return "".join(o.text for c in code_cells(nb) for o in c.outputs if o.output_type == "stream" and o.name == name)


def text_of(nb) -> str:
    """Everything the executed notebook printed (streams and plain-text results)."""
    parts = []
    for c in code_cells(nb):
        for o in c.outputs:
            parts.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in code_cells(nb) for o in c.outputs)


def widgets(nb) -> int:
    """The kit's widgets shown (the scrubbers and sliders are VBoxes; tqdm's progress bars are not counted)."""
    return sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               and o["data"].get("text/plain", "").startswith("VBox") for c in code_cells(nb) for o in c.outputs)


def test_notebooks_run_headless_in_order_on_the_demo_data(tmp_path, shared_videos):
    out = tmp_path / "outputs"  # absolute: nothing is written into the repository's outputs/
    small = dict(output_dir=out, img_size=32)

    nb1 = papermill("01_data_inspection", tmp_path / "01.ipynb", ROOT, **small, frame=40)
    assert (out / "demo_data" / "Videos").is_dir(), "01 did not generate the demo data into output_dir"
    assert "DEMO data" in text_of(nb1) and "0 problem(s)" in text_of(nb1) and "crop: " in text_of(nb1)
    assert images(nb1) >= 6, "01 should draw its label counts, timelines, frames, poses and one frame"
    assert widgets(nb1) == 0, "headless: the static frame, not the widget"

    nb2 = papermill("02_backbone_check", tmp_path / "02.ipynb", ROOT, **small, probe_frames=48)
    text = text_of(nb2)
    assert "Backbone: tiny" in text and "RANDOM" in text  # the choice and the loader's own warning
    assert "pixel_values" in text and "token grid" in text
    assert "whole video: per-frame" in text and "peak_memory_mb" in text and "s per minute of video" in text
    stores = list((out / "features").glob("*/*/manifest.json"))
    assert len(stores) == 1, "02 extracts one video into the store training uses"
    assert len(list(stores[0].parent.glob("*.npy"))) == 1 and "= (D, L)" in text
    assert "[info]" in streams(nb2, "stdout") and "[info]" not in streams(nb2, "stderr"), "info lines on stdout"
    assert "[warn]" in streams(nb2, "stderr") and "[warn]" not in streams(nb2, "stdout"), "warnings on stderr"

    nb3 = papermill("03_train", tmp_path / "03.ipynb", ROOT / "notebooks", **small, epochs=2, batch_size=4,
                    run_name="nbtest")
    run = out / "nbtest"
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    config = json.loads((run / "config.json").read_text())
    assert (config["epochs"], config["img_size"], config["batch_size"]) == (2, 32, 4)
    assert "DEMO data" in text_of(nb3) and "pipeline=whole_video" in text_of(nb3) and images(nb3) >= 1
    assert str(stores[0].parent) in text_of(nb3), "03 shows the feature store it trained from"
    n = len(list((out / "demo_data" / "Videos").iterdir()))
    assert len(list(stores[0].parent.glob("*.npy"))) == n
    assert f"Extracted features of {n - 1} video(s)" in text_of(nb3), "the video 02 extracted is not extracted again"

    nb4 = papermill("04_evaluate", tmp_path / "04.ipynb", ROOT, output_dir=out)
    result = json.loads((run / "eval_test.json").read_text())
    assert result["split"] == "test" and result["videos"] >= 1 and not result["on_selection_split"]
    assert any((run / "predictions").glob("*.csv"))
    assert f"Run: {run}" in text_of(nb4) and "Scored on 'test', held out" in text_of(nb4) and images(nb4) >= 2

    videos = tmp_path / "new_videos"  # one real video and one demo video nobody annotated
    videos.mkdir()
    shutil.copy(shared_videos / "rawvideo_part_0.mp4", videos / "real.mp4")
    shutil.copy(out / "demo_data" / "Videos" / "demo_000.mp4", videos / "demo.mp4")
    nb5 = papermill("05_predict", tmp_path / "05.ipynb", ROOT, output_dir=out, videos=videos, out=tmp_path / "labels")
    for stem in ("real", "demo"):
        for suffix in (".csv", ".segments.csv", ".txt", ".png"):
            assert (tmp_path / "labels" / f"{stem}{suffix}").is_file(), f"05 did not write {stem}{suffix}"
    summary = tmp_path / "labels" / "summary.csv"
    assert summary.is_file() and str(summary.resolve()) in text_of(nb5), "05 lists every output with its full path"
    assert images(nb5) >= 3 and widgets(nb5) == 0, "two barcodes and the static frame, no widget"


def test_05_labels_the_runs_held_out_videos_by_default(trained_run, capsys):
    from kit.files import read_json
    from kit.results.walkthrough import videos_to_label

    splits = read_json(trained_run / "splits.json")
    split = "test" if splits.get("test") else "val"
    paths = videos_to_label("", trained_run)
    assert [Path(p).stem for p in paths] == splits[split] and all(Path(p).is_file() for p in paths)
    assert f"labelling the run's {split} videos" in capsys.readouterr().out
    assert videos_to_label("notebooks", trained_run) == [str(ROOT / "notebooks")]  # relative: from the project root


pytest_plugins = ["fixtures_run"]


# --- keypoints on the frames a backbone receives --------------------------------------------------
@pytest.mark.parametrize("mode", ["crop", "squash", "pad"])
@pytest.mark.parametrize("size", [(100, 60), (60, 100)])
def test_keypoints_land_where_the_resize_puts_their_pixels(mode, size):
    """A bright dot at each keypoint of a non-square frame is found, after the resize, where the mapped
    keypoint says (crop: dots cut away are marked invisible)."""
    import numpy as np

    from kit.data.resize import Resize
    from kit.results.notebook import keypoints_on_frames

    width, height = size
    resize = Resize(30, mode)
    points = [(8, 8), (50, 30), (width - 10, height - 9), (width // 2 + 7, 12)]
    for x, y in points:
        frame = np.zeros((height, width, 3), np.uint8)
        frame[y - 1:y + 2, x - 1:x + 2] = 255  # a 3x3 dot centred on (x, y)
        out = resize(frame)[..., 0].astype(float)  # (30, 30)
        (mx, my, score), = keypoints_on_frames(np.array([[[x, y, 1.0]]]), resize, height, width)[0]
        if out.sum() < 50:  # the dot was cropped away
            assert score == 0, f"{mode}: ({x}, {y}) is outside the crop but still drawn at ({mx:.1f}, {my:.1f})"
            continue
        ys, xs = np.mgrid[:30, :30]
        cx, cy = (out * xs).sum() / out.sum(), (out * ys).sum() / out.sum()  # where the dot landed
        assert score == 1 and abs(cx - mx) < 0.5 and abs(cy - my) < 0.5, (mode, (x, y), (cx, cy), (mx, my))


@pytest.mark.slow
def test_notebooks_03_to_05_show_the_behaviours_of_a_multilabel_run(tmp_path):
    """03 -> 05 on ``demo-data --multilabel``: thresholds, per-behaviour metrics, per-behaviour decisions
    (the API path is covered, faster, by tests/test_multilabel.py)."""
    from kit.data.demo import make_demo_data

    data = make_demo_data(tmp_path / "ml", num_videos=6, multilabel=True)
    out = tmp_path / "outputs"
    nb3 = papermill("03_train", tmp_path / "03.ipynb", ROOT, data_root=data, backbone="tiny", img_size=32, epochs=2,
                    output_dir=out, run_name="ml")
    assert "scratch" in text_of(nb3) and (out / "ml" / "thresholds.json").is_file()
    nb4 = papermill("04_evaluate", tmp_path / "04.ipynb", ROOT, output_dir=out)
    assert "frames_pct" in text_of(nb4) and "scratch" in text_of(nb4)
    nb5 = papermill("05_predict", tmp_path / "05.ipynb", ROOT, output_dir=out, out=tmp_path / "labels")
    assert "behaviour:scratch_prob" in text_of(nb5)
