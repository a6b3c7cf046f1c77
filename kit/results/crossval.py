"""``python -m kit crossval``: every fold of a benchmark trained and evaluated, reported as papers do.

For a dataset in the MS-TCN layout (Breakfast and GTEA: 4 folds, 50Salads: 5; or the kit's own data
after ``python -m kit export --folds K``): one run per fold (``split_index`` = the fold, run
``<name>-split<N>``), evaluated on the fold's test bundle, then a table per fold and the mean +/- std
over folds (sample standard deviation, ``ddof=1``) of frame accuracy, edit and F1@{10,25,50} of the
``action`` task, written as Markdown and JSON to ``<output_dir>/crossval/<name>.{md,json}``.

Which checkpoint is scored: as in MS-TCN, the last epoch's when the fold has no validation bundle
(``last``); the best validation epoch's when it has one (``best``). The table says which, per fold.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from kit.config import RunConfig, resolve_path
from kit.data.dataset import dataset_format
from kit.results.evaluate import background_note, evaluate
from kit.temporal.train import fit

COLUMNS = ("acc", "edit", "f1@10", "f1@25", "f1@50")


def folds_of(root: str | Path) -> list[int]:
    """The fold numbers ``N`` with a ``splits/test.split<N>.bundle`` in an MS-TCN-layout folder."""
    found = [re.fullmatch(r"test\.split(\d+)\.bundle", p.name) for p in (Path(root) / "splits").glob("*.bundle")]
    return sorted(int(m.group(1)) for m in found if m)


def crossval(cfg: RunConfig, folds: list[int] | None = None, background=None, task: str = "action") -> dict:
    """Trains and evaluates every fold; returns ``{"folds": rows, "mean": ..., "std": ..., ...}``."""
    if dataset_format(cfg) != "mstcn":
        raise ValueError("crossval needs a dataset with folds: the MS-TCN layout (features/, groundTruth/, mapping.txt, "
                         "splits/). `python -m kit export --data_root YOURS --out DIR --folds 4` writes one from the "
                         "kit's layout")
    root = resolve_path(cfg.data_root)
    have = folds_of(root)
    folds = list(folds or have)
    missing = sorted(set(folds) - set(have))
    if not folds or missing:
        raise ValueError(f"{root / 'splits'}: no test bundle for fold(s) {missing or folds}; folds there: {have or 'none'}")
    name = cfg.run_name or time.strftime("crossval-%Y%m%d-%H%M%S")
    rows = []
    for n in folds:
        run = fit(cfg.replace(split_index=n, run_name=f"{name}-split{n}"))
        splits = json.loads((run.run_dir / "splits.json").read_text())
        checkpoint = "best" if splits.get("val") else "last"  # MS-TCN scores its last epoch: it has no val split
        res = evaluate(run.run_dir, split="test", checkpoint=checkpoint, background=background)
        left_out = res["background"]  # None: the data's protocol (MS-TCN layout: `background`, as eval.py)
        rows.append({"fold": n, "checkpoint": checkpoint, "epoch": res["epoch"], "videos": res["videos"],
                     "frames": res["frames"], **{k: res[task][k] for k in COLUMNS}})
    scores = np.array([[r[k] for k in COLUMNS] for r in rows], dtype=float)
    result = {"name": name, "task": task, "data_root": str(root), "folds": rows,
              "mean": dict(zip(COLUMNS, scores.mean(0).round(2).tolist())),
              "std": dict(zip(COLUMNS, (scores.std(0, ddof=1) if len(rows) > 1 else np.zeros(len(COLUMNS)))
                               .round(2).tolist())),
              "config": cfg.to_dict(), "background": left_out,
              "background_rule": "given" if background is not None else "protocol", "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    out = resolve_path(cfg.output_dir) / "crossval"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(to_markdown(result) + "\n")
    result["written"] = str(out / f"{name}.md")
    return result


def to_markdown(result: dict) -> str:
    """Per fold, then mean +/- std, as the papers' tables (scores in percent)."""
    head = ["| fold | checkpoint | videos | " + " | ".join(c.replace("f1", "F1") for c in COLUMNS) + " |",
            "|---|---|---|" + "---|" * len(COLUMNS)]
    body = [f"| {r['fold']} | {r['checkpoint']} (epoch {r['epoch']}) | {r['videos']} | "
            + " | ".join(f"{r[c]:.1f}" for c in COLUMNS) + " |" for r in result["folds"]]
    mean = ("| **mean +/- std** | | | " + " | ".join(f"{result['mean'][c]:.1f} +/- {result['std'][c]:.1f}"
                                                     for c in COLUMNS) + " |")
    return "\n".join([f"{result['task']} task, {len(result['folds'])} fold(s) of {result['data_root']}; "
                      f"{result['date']}.", "", background_note(result), ""] + head + body + [mean])
