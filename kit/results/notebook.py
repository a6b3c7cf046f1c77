"""What the notebooks need around their library calls: strict parameters, live or headless, keypoints on frames.

- :func:`check_parameters`: the cell right after the ``parameters`` cell. papermill injects every
  ``-p NAME VALUE`` it is given, known or not, and only warns ("Passed unknown parameter"); this
  stops the notebook at once, before anything heavy is imported, on a name the notebook does not
  have (saying the closest one) or a value of the wrong type, with one line instead of a traceback.
- :func:`live_frontend`: whether a person is looking at the kernel live (JupyterLab, Notebook 7),
  so a widget works; otherwise (papermill, nbclient, a plain interpreter) the notebook shows the
  same view as a static figure, which the executed copy keeps.
- :func:`keypoints_on_frames`: keypoints in video pixels moved onto frames as a backbone receives
  them (the crop / squash / pad geometry of ``kit.data.resize.Resize``).

Importing this module is cheap (standard library only; numpy inside :func:`keypoints_on_frames`):
the parameter check runs before torch is imported.

Legend: ``S`` frames, ``J`` joints.
"""
from __future__ import annotations

import ast
import difflib
import json
import os
import sys
from pathlib import Path

__all__ = ["ParameterError", "check_parameters", "notebook_parameters", "passed_parameters", "live_frontend",
           "keypoints_on_frames"]

TYPES = {"str": str, "int": int, "float": float, "bool": bool}
EXAMPLES = {str: "text", int: "10", float: "0.001", bool: "True"}  # as papermill's -p parses them
WANTED = {str: "a string", int: "an int", float: "a float", bool: "True or False"}
# papermill's --inject-input-path / --inject-output-path / --inject-paths add these
PAPERMILL_NAMES = ("PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH")


class ParameterError(ValueError):
    """A notebook parameter that does not exist or has the wrong type.

    IPython shows ``_render_traceback_()`` instead of a traceback: the notebook's error output (and
    papermill's message) is this one line.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mParameterError\x1b[0m: {self}"]


# --- the parameters a notebook declares ------------------------------------------------------------
def notebook_path(notebook: str) -> Path:
    """``<project root>/notebooks/<notebook>.ipynb`` (then the current folder): the source notebook."""
    from kit.config import project_root

    name = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
    for folder in (project_root() / "notebooks", Path.cwd()):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"notebook {name} not found in {project_root() / 'notebooks'} or {Path.cwd()}: pass "
                            "check_parameters(..., types={name: type}) instead")


def notebook_parameters(notebook: str | Path) -> dict[str, type]:
    """``{name: type}`` of the cell tagged ``parameters`` of a notebook (a name or an ``.ipynb`` path).

    The type is the annotation (``epochs: int = 10``), else the literal's type; an ``int`` literal
    of a ``float`` annotation is fine.
    """
    path = Path(notebook) if str(notebook).endswith(".ipynb") and Path(notebook).is_file() else notebook_path(
        str(notebook))
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    src = "".join(cells[0]["source"]) if isinstance(cells[0]["source"], list) else cells[0]["source"]
    out = {}
    for stmt in ast.parse(src).body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            typ = TYPES.get(ast.unparse(stmt.annotation))
            if typ is None:
                raise ValueError(f"{path}: parameter {stmt.target.id} is annotated {ast.unparse(stmt.annotation)}; "
                                 f"use one of {', '.join(TYPES)}")
            out[stmt.target.id] = typ
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = type(ast.literal_eval(stmt.value))
    return out


def passed_parameters(namespace: dict) -> list[str]:
    """The names the cell that ran just before the current one assigns, when it assigns literals only.

    That cell is papermill's injected ``# Parameters`` cell (it sits between the ``parameters`` cell
    and the check) or, in JupyterLab, the ``parameters`` cell itself: either way every name in it is
    a parameter someone set. Any other cell (cells run out of order, ``result = fit(cfg)``) gives
    ``[]``.
    """
    history = namespace.get("In")  # IPython's input history: In[-1] is the cell running now
    if not isinstance(history, list) or len(history) < 2:
        return []
    try:
        body = ast.parse(history[-2]).body
    except SyntaxError:
        return []
    names = []
    for stmt in body:
        targets = [stmt.target] if isinstance(stmt, ast.AnnAssign) else getattr(stmt, "targets", None)
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or not all(isinstance(t, ast.Name) for t in targets):
            return []
        try:
            ast.literal_eval(stmt.value)  # papermill writes literals; a computed value is no parameter
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return []
        names += [t.id for t in targets]
    return names


# --- the check -----------------------------------------------------------------------------------
def check_parameters(namespace: dict, notebook: str = "", types: dict[str, type] | None = None) -> None:
    """Stops a notebook on a parameter it does not have, or one of the wrong type.

    Call it in the cell right after the ``parameters`` cell: ``check_parameters(globals(), "03_train")``.

    Args:
        namespace: the notebook's ``globals()`` (the parameters' values and IPython's ``In``).
        notebook: the notebook's name: its ``parameters`` cell says the names and types.
        types: ``{name: type}`` instead of reading the notebook.

    Raises:
        ParameterError: one line naming each unknown parameter with the closest valid name, and each
            value of the wrong type with what it should be.
    """
    if types is None:
        types = notebook_parameters(notebook)
    problems = []
    for name in passed_parameters(namespace):
        if name not in types and name not in PAPERMILL_NAMES:
            close = difflib.get_close_matches(name, list(types), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"this notebook's parameters: {', '.join(types)}"
            problems.append(f"unknown parameter {name!r} ({hint})")
    for name, typ in types.items():
        if name not in namespace:
            problems.append(f"parameter {name!r} is not defined: run the parameters cell first")
            continue
        value = namespace[name]
        ok = (isinstance(value, bool) if typ is bool else isinstance(value, (int, float)) and not isinstance(
            value, bool) if typ is float else isinstance(value, typ) and not isinstance(value, bool))
        if not ok:
            problems.append(f"parameter {name!r} must be {WANTED[typ]} (papermill: -p {name} {EXAMPLES[typ]}), "
                            f"got {type(value).__name__} {value!r}")
    if problems:
        where = f"{notebook}: " if notebook else ""
        raise ParameterError(where + "; ".join(problems))


# --- live or headless ----------------------------------------------------------------------------
def live_frontend() -> bool:
    """Whether this runs in a kernel that a Jupyter frontend (JupyterLab, Notebook 7) drives live.

    Two signals, both required:

    - ``JPY_SESSION_NAME`` in the environment: jupyter_server starts every notebook's kernel with it
      (``jupyter_server/services/sessions/sessionmanager.py``, ``get_kernel_env``); nbclient and
      papermill never set it;
    - the cell being run came with ``allow_stdin=True``: frontends that show output live accept
      ``input()``; nbclient executes every cell with ``allow_stdin = False`` (``nbclient/client.py``),
      so a papermill run started from inside a JupyterLab kernel, which inherits
      ``JPY_SESSION_NAME``, still counts as headless.

    Outside an IPython kernel (a script, pytest) it is False.
    """
    if not os.environ.get("JPY_SESSION_NAME"):
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return False
    return bool(getattr(kernel, "_allow_stdin", True))  # ipykernel sets it from each execute_request


# --- keypoints on resized frames -----------------------------------------------------------------
def keypoints_on_frames(keypoints, resize, height: int, width: int):
    """Keypoints in pixels of a ``height x width`` video, in pixels of the frames ``resize`` makes.

    ``resize`` is a ``kit.data.resize.Resize`` (or a backbone's ``.resize``): its ``geometry`` says
    how the frame was scaled and where it was cropped or padded. Pixel centres map onto pixel centres
    (``(x + 0.5) * scale - 0.5``, the convention of the antialiased resize). Joints that fall outside
    a centre crop get score 0 (not drawn); the rest are unchanged.

    Shapes: keypoints ``(S, J, 2|3)`` x, y[, score] -> ``(S, J, 3)`` float.
    """
    import numpy as np

    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must be (S, J, 2|3), got shape {kp.shape}")
    nh, nw, top, left = resize.geometry(height, width)
    sign = -1 if resize.mode == "crop" else 1  # crop: the output starts at the offset; pad: the frame does
    out = np.ones(kp.shape[:2] + (3,))
    out[..., 0] = (kp[..., 0] + 0.5) * nw / width - 0.5 + sign * left
    out[..., 1] = (kp[..., 1] + 0.5) * nh / height - 0.5 + sign * top
    if kp.shape[-1] == 3:
        out[..., 2] = kp[..., 2]
    S = resize.size
    outside = (out[..., 0] < -0.5) | (out[..., 0] > S - 0.5) | (out[..., 1] < -0.5) | (out[..., 1] > S - 0.5)
    out[..., 2] = np.where(outside, 0.0, out[..., 2])
    return out
