"""Full-video evaluation of a trained run: ``evaluate(run_dir, split="val") -> dict``.

Loads the run's ``config.json``, ``labels.json``, ``splits.json`` and a checkpoint
(:class:`kit.temporal.trained.TrainedRun`), predicts every frame of every video of the split exactly
as validation did during training (whole videos: one forward pass over each video's features;
windows: windows of ``val_T``, overlaps averaged), and writes into the run folder::

    predictions/<video>.csv   frame, then per task <task>_true, <task>_pred, <task>_conf
                              (class names; "" = unlabeled; conf = the predicted class's probability)
                              multi-label task: <task>:<behaviour>_true (1/0, "" unlabeled),
                              _prob (its sigmoid), _pred (1/0 at the run's threshold)
    predictions/<video>.txt   the action task in MS-TCN's result format (what its eval.py reads)
    eval_<split>.json         {task: {acc, macro_f1, edit, f1@10, f1@25, f1@50, per_class,
                              confusion, labels}, videos, frames, checkpoint, epoch, split,
                              background}   (scores in percent, see kit.temporal.metrics)
                              multi-label task: {multilabel: true, behaviours: {name: {precision,
                              recall, f1, ap, edit, f1@10, f1@25, f1@50, threshold, support,
                              frames_pct}}, mean, labels}   (kit.temporal.behaviours)

Command line: ``python -m kit evaluate --run outputs/<run> [--split val] [--checkpoint best]``.

Legend: ``L`` frames in a video, ``C`` classes of a task.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.config import CHECKPOINTS, cli_path, positive_int
from kit.data.labels import unseen_labels
from kit.data.mstcn import mstcn_labels, write_result
from kit.errors import ConfigError, RunMissing
from kit.files import read_json, write_json
from kit.temporal.behaviours import METRICS as BEHAVIOUR_METRICS, behaviour_metrics, decide
from kit.temporal.metrics import confusion, per_class_report, task_metrics
from kit.data.dataset import dataset_format, run_records
from kit.temporal.runs import latest_run
from kit.temporal.sequences import VideoPrediction
from kit.temporal.trained import TrainedRun

log = logging.getLogger("kit")
METRICS = ("acc", "macro_f1", "edit", "f1@10", "f1@25", "f1@50")


def evaluate(run_dir: str | Path | None = None, split: str = "", checkpoint: str = "",
             output_dir: str | Path = "outputs", batch_size: int | None = None, background=None,
             device: str | torch.device | None = None, progress: bool = False) -> dict:
    """Predicts every frame of a split with a run's checkpoint and scores it.

    Args:
        run_dir: the run folder; None = the newest run under ``output_dir``.
        split: ``train``, ``val`` or ``test`` (as saved in the run's ``splits.json``); ``""`` = ``test``
            when the run has test videos, else ``val`` (then the result says it is the split
            ``best.pt`` was chosen on: an optimistic score).
        checkpoint: ``best`` or ``last``; ``""`` = ``best`` when the run had validation videos, else
            ``last`` (as MS-TCN scores its last epoch when there is nothing to choose on).
        batch_size: windows per forward pass (default: the run's ``batch_size``).
        background: class names left out of edit and F1@k, e.g. ``["idle"]``; ``()`` counts every class;
            None = the protocol of the data's origin (:func:`protocol_background`): ``background`` is left
            out on MS-TCN-layout data or under a published recipe, as upstream ``eval.py`` always does.
        device: default CUDA when available, else CPU.

    Returns:
        The dict written to ``<run>/eval_<split>.json``.
    """
    run = _run_folder(run_dir, output_dir)
    if not checkpoint:
        checkpoint = "best" if read_json(run / "splits.json").get("val") else "last"
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    trained = TrainedRun(run, checkpoint, device)
    splits = trained.splits
    split = split or ("test" if splits.get("test") else "val")
    if not splits.get(split):
        have = ", ".join(f"{k} ({len(v)} videos)" for k, v in splits.items()) or "none"
        raise ConfigError(f"run {run} has no videos in split {split!r}; its splits: {have}")
    # only this split's videos are read (and probed, unless their features' sidecars already know them)
    records = run_records(trained.cfg, output_dir=run.parent, stems=splits[split])  # demo data: beside the run
    by_stem = {r.stem: r for r in records}
    records = [by_stem[s] for s in splits[split]]
    preds = trained.predict(records, batch_size=batch_size, progress=progress)
    vocab = trained.vocab
    tasks, multilabel, thresholds = trained.tasks, trained.multilabel, trained.thresholds
    single = [t for t in tasks if t not in multilabel]
    (run / "predictions").mkdir(exist_ok=True)
    for p, r in zip(preds, records):
        _prediction_table(p, r, vocab, tasks, thresholds).to_csv(run / "predictions" / f"{p.stem}.csv", index=False)
        if single:  # MS-TCN's result file, for its eval.py: action, else the first single-label task
            main = "action" if "action" in single else single[0]
            write_result(run / "predictions" / f"{p.stem}.txt",
                         mstcn_labels([vocab[main][k] for k in p.pred(main)]))

    rule = "given" if background is not None else "protocol"
    background = protocol_background(trained.cfg, vocab) if background is None else [str(b) for b in background]
    if background:
        log.info(f"[info] Edit and F1@k leave out {', '.join(background)} ("
                 + ("as given" if rule == "given" else "the MS-TCN protocol, as its eval.py; `--background` with no "
                    "name counts every class") + ")")
    result = {task: _score_behaviours(preds, task, vocab[task], thresholds.get(task, {})) if task in multilabel
              else _score(preds, task, vocab[task], [b for b in background if b in vocab[task]]) for task in tasks}
    unseen = unseen_labels(records, {t: vocab[t] for t in tasks}, multilabel)
    for task, counts in unseen.items():
        log.warning(f"[warn] {task}: {sum(counts.values())} frames of {split} have classes the training split never "
                    f"had ({', '.join(f'{k}: {v}' for k, v in counts.items())}); they count as errors")
    selection = "val" if splits.get("val") else "train_loss"  # what best.pt was chosen on
    optimistic = checkpoint == "best" and split == selection
    if optimistic:
        log.warning(f"[warn] Scores on {split!r}, the split best.pt was chosen on: optimistic. Hold out a test split "
                    "(test_fraction, or `test` rows in splits.csv) for a score nothing was chosen on")
    result.update(videos=len(preds), frames=int(sum(r.num_frames for r in records)),
                  checkpoint=checkpoint, epoch=trained.epoch, split=split, pipeline=trained.pipeline,
                  selection_split=selection, on_selection_split=optimistic, unseen=unseen,
                  background=background, background_rule=rule)
    write_json(run / f"eval_{split}.json", result)
    return result


def protocol_background(cfg, vocab: dict[str, list[str]]) -> list[str]:
    """The classes the benchmark protocol of a run's data leaves out of edit and F1@k.

    MS-TCN's ``eval.py`` (bg_class=["background"], eval.py:15,62,68; ASFormer, MS-TCN++ and DiffAct
    score with the same file) always drops segments labelled ``background``; so the kit does on
    data in the MS-TCN layout and in runs of a published recipe, when a class of that name exists.
    Data in the kit's own layout counts every class unless told otherwise.
    """
    mstcn = cfg.recipe != "" or dataset_format(cfg) == "mstcn"
    return ["background"] if mstcn and any("background" in names for names in vocab.values()) else []


def _run_folder(run_dir, output_dir) -> Path:
    if run_dir is None or str(run_dir) == "":
        return latest_run(output_dir)
    run = Path(run_dir).expanduser()
    if not (run / "config.json").is_file():
        raise RunMissing(f"{run} is not a run folder (no config.json): pass the folder that "
                                "`python -m kit train` printed, e.g. outputs/<run_name>")
    return run


def _prediction_table(p: VideoPrediction, record, vocab: dict[str, list[str]], tasks: list[str],
                      thresholds: dict | None = None) -> pd.DataFrame:
    """One row per frame: ``frame``, then ``<task>_true, <task>_pred, <task>_conf`` per task; per
    behaviour of a multi-label task ``<task>:<behaviour>_true`` (1/0, "" unlabeled), ``_prob``, ``_pred``."""
    L = len(p.labels[tasks[0]])
    cols = {"frame": np.arange(L)}
    for t in tasks:
        if t in p.multilabel:
            y = p.labels[t]  # (L, K)
            d = decide(p.probs[t], vocab[t], (thresholds or {}).get(t))  # (L, K)
            for k, b in enumerate(vocab[t]):
                cols[f"{t}:{b}_true"] = np.where(y[:, k] == -100, "", y[:, k].astype(int).astype(str)).astype(object)
                cols[f"{t}:{b}_prob"] = p.probs[t][:, k].round(4)
                cols[f"{t}:{b}_pred"] = d[:, k]
            continue
        names = np.asarray(vocab[t], dtype=object)
        cols[f"{t}_true"] = np.asarray(record.labels.get(t) or [""] * L, dtype=object)  # "" = unlabeled
        cols[f"{t}_pred"] = names[p.pred(t)]
        cols[f"{t}_conf"] = p.probs[t].max(1).round(4)  # (L,)
    return pd.DataFrame(cols)


def _score(preds: list[VideoPrediction], task: str, names: list[str], background) -> dict:
    p = [v.pred(task) for v in preds]
    g = [v.labels[task] for v in preds]
    out = {k: _finite(v) for k, v in task_metrics(p, g, names, background).items()}
    idx = list(range(len(names)))
    try:
        report = per_class_report(p, g, labels=idx, class_names=names)
        out["per_class"] = {name: {k: int(v) if k == "support" else _finite(v) for k, v in row.items()}
                            for name, row in report.to_dict(orient="index").items()}
    except ValueError:  # no labelled frame in the split for this task
        out["per_class"] = {}
    out["confusion"] = confusion(p, g, labels=idx).tolist()
    out["labels"] = list(names)
    return out


def _score_behaviours(preds: list[VideoPrediction], task: str, names: list[str], thresholds: dict) -> dict:
    """Per-behaviour metrics of a multi-label task at the run's thresholds (kit.temporal.behaviours)."""
    m = behaviour_metrics([v.probs[task] for v in preds], [v.labels[task] for v in preds], names, thresholds)
    mean = {k: _finite(v) for k, v in m.pop("mean").items()}
    rows = {b: {k: v if k == "support" else _finite(v) for k, v in row.items()} for b, row in m.items()}
    return {"multilabel": True, "behaviours": rows, "mean": mean, "labels": list(names)}


def _finite(v):
    """JSON-safe numbers: NaN (no labelled frame) becomes null."""
    v = float(v)
    return None if np.isnan(v) else round(v, 4)


# --- command line -------------------------------------------------------------------------
def main_evaluate(argv: list[str] | None = None) -> int:
    """``python -m kit evaluate --run outputs/<run> [--split val] [--checkpoint best|last]``."""
    ap = argparse.ArgumentParser(prog="python -m kit evaluate",
                                 description="Predict every frame of a split with a trained run and score it.")
    ap.add_argument("--run", default="", type=cli_path, help="run folder (default: the newest run under --output_dir)")
    ap.add_argument("--split", default="", help="train | val | test (default: test when the run has test videos, "
                    "else val)")
    ap.add_argument("--checkpoint", default="", choices=("",) + CHECKPOINTS, help="best | last (default: best when "
                    "the run had validation videos, else last, as MS-TCN)")
    ap.add_argument("--output_dir", default="outputs", type=cli_path, help="where to look for the newest run")
    ap.add_argument("--batch_size", type=positive_int, default=None, help="windows per forward pass")
    ap.add_argument("--background", nargs="*", default=None, metavar="CLASS",
                    help="class names left out of edit and F1@k; with no name, every class counts (default: the "
                         "protocol of the data: `background` on MS-TCN-layout data or a recipe's run, as eval.py)")
    args = ap.parse_args(argv)
    run = _run_folder(args.run or None, args.output_dir)  # errors: `python -m kit` prints them in one line
    res = evaluate(run, args.split, args.checkpoint, args.output_dir, args.batch_size, args.background)
    note = "  (the split best.pt was chosen on: optimistic)" if res["on_selection_split"] else ""
    print(f"{run}  split={res['split']}{note}  checkpoint={res['checkpoint']} (epoch {res['epoch']})  "
          f"videos={res['videos']}  frames={res['frames']}")
    print(format_table(res))
    print(background_note(res))
    written = run / f"eval_{res['split']}.json"
    print(f"wrote {written} and {run / 'predictions'}/<video>.csv")
    return 0


def background_note(result: dict) -> str:
    """One line saying which classes edit and F1@k left out, and why."""
    bg = result.get("background") or []
    if not bg:
        return "edit and F1@k count every class"
    why = "as given" if result.get("background_rule") == "given" else "the MS-TCN protocol (eval.py); --background to change"
    return f"edit and F1@k leave out: {', '.join(bg)} ({why})"


def format_table(result: dict) -> str:
    """The metrics of an ``evaluate`` result as fixed-width tables: one row per task; then, when the
    result has them, precision, recall, F1 and share of frames per class, and per behaviour of a
    multi-label task its frame, average-precision and segment metrics at its threshold."""
    tasks = [k for k, v in result.items() if isinstance(v, dict) and "acc" in v]
    width = max([4] + [len(t) for t in tasks])
    lines = [f"{'task':<{width}}" + "".join(f"{m:>10}" for m in METRICS)]
    for t in tasks:
        cells = [result[t].get(m) for m in METRICS]
        lines.append(f"{t:<{width}}" + "".join(_cell(v) for v in cells))
    rows = [(f"{t}/{c}", r) for t in tasks for c, r in (result[t].get("per_class") or {}).items()]
    if rows:
        w = max(len(n) for n, _ in rows)
        lines += ["", f"{'task/class':<{w}}" + "".join(f"{m:>10}" for m in ("precision", "recall", "f1", "support",
                                                                             "frames%"))]
        total = {t: sum(r["support"] for r in (result[t].get("per_class") or {}).values()) or 1 for t in tasks}
        for n, r in rows:
            share = 100.0 * r["support"] / total[n.split("/")[0]]
            lines.append(f"{n:<{w}}" + "".join(_cell(r.get(k)) for k in ("precision", "recall", "f1-score"))
                         + f"{r['support']:>10d}" + _cell(share))
    rows = [(f"{t}/{b}", r) for t, v in result.items() if isinstance(v, dict) and v.get("multilabel")
            for b, r in v["behaviours"].items()]
    if rows:
        w = max(len(n) for n, _ in rows)
        cols = BEHAVIOUR_METRICS + ("threshold", "frames_pct")
        lines += ["", f"{'task/behaviour':<{w}}" + "".join(f"{m.replace('_pct', '%'):>10}" for m in cols)]
        lines += [f"{n:<{w}}" + "".join(_cell(r.get(k)) for k in cols) for n, r in rows]
    return "\n".join(lines)


def _cell(v) -> str:
    return f"{'-':>10}" if v is None else f"{v:>10.2f}"
