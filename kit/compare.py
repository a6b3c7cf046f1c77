"""Ablations: ``python -m kit compare`` trains temporal models on several feature sets.

A *variant* is one backbone spec x visual mode x pose setting x temporal model (``--temporal_models
mstcn asformer``: the models on the same stored features, seeds and splits). Features are extracted
ONCE per backbone and visual mode (the feature store, on the whole-video path); then each temporal
model is trained per variant and seed. Each run keeps its best checkpoint by validation accuracy (as
``fit`` always does); each variant is then scored on the selection split (``select_on``, default
``val``), which alone ranks the variants and decides each factor (visual mode, backbone, pose), and
on ``test``, reported once per run and never used to choose. The table gives mean +/- sample std over
seeds of acc, edit and F1@{10,25,50} (``task``, in percent) and says which split decided.

Backbone specs (``--backbones``): ``NAME[:SOURCE][,KEY=VALUE...]``; NAME is a ``RunConfig.backbone``
value (``tiny``, ``auto``, ``videomae``, ``vit2d``, ``hf``); SOURCE a hub id or a timm name
(``model_id``) or an existing folder (``backbone_path``); KEYs ``img_size``, ``num_frames``,
``frame_step``, ``resize_mode``, ``path`` (``backbone_path``, e.g. a timm weights file). Examples:
``tiny``, ``hf:facebook/vjepa2-vitl-fpc16-256-ssv2,img_size=256``, ``hf:/models/my_videomae``,
``vit2d:vit_small_patch14_dinov2.lvd142m``, ``vit2d:vit_base_patch16_clip_224.openai,path=/w/clip.safetensors``.
Written to ``<output_dir>/compare/<timestamp>.{md,json}``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from kit.config import (BACKBONES, PATH_FIELDS, RESIZE_MODES, TEMPORAL_MODELS, VISUAL_MODES, RunConfig, cli_path,
                        resolve_path)

COLUMNS = ("acc", "edit", "f1@10", "f1@25", "f1@50")
SPEC_KEYS = {"img_size": int, "num_frames": int, "frame_step": int, "resize_mode": str, "path": str}
FACTORS = ("backbone", "visual_mode", "use_pose", "temporal_model")


def parse_backbone(spec: str) -> dict:
    """The ``RunConfig`` fields a backbone spec sets (see the module docstring); ``""``: none.

    Example:
        >>> parse_backbone("hf:facebook/vjepa2-vitl-fpc16-256-ssv2,img_size=256")
        {'backbone': 'hf', 'model_id': 'facebook/vjepa2-vitl-fpc16-256-ssv2', 'img_size': 256}
    """
    if not spec:
        return {}
    head, *options = spec.split(",")
    name, _, source = head.partition(":")
    if name not in BACKBONES or not name:
        raise ValueError(f"backbone spec {spec!r}: {name!r} is not one of {[b for b in BACKBONES if b]} "
                         "(syntax NAME[:SOURCE][,KEY=VALUE...], e.g. hf:facebook/vjepa2-vitl-fpc16-256-ssv2)")
    out: dict = {"backbone": name}
    if source and name == "tiny":
        raise ValueError(f"backbone spec {spec!r}: tiny takes no source (it has random weights)")
    if source and Path(source).expanduser().exists():
        if name == "vit2d":
            raise ValueError(f"backbone spec {spec!r}: name the timm model, the file goes in path=: "
                             f"vit2d:<timm name>,path={source}")
        out["backbone_path"] = str(Path(source).expanduser())
    elif source:
        out["model_id"] = source
    for option in options:
        key, eq, value = option.partition("=")
        if key not in SPEC_KEYS or not eq or not value:
            raise ValueError(f"backbone spec {spec!r}: option {option!r} is not KEY=VALUE with KEY one of "
                             f"{sorted(SPEC_KEYS)}")
        try:
            out["backbone_path" if key == "path" else key] = SPEC_KEYS[key](value)
        except ValueError:
            raise ValueError(f"backbone spec {spec!r}: {key}={value!r} is not an {SPEC_KEYS[key].__name__}") from None
    if out.get("resize_mode", "crop") not in RESIZE_MODES:
        raise ValueError(f"backbone spec {spec!r}: resize_mode must be one of {RESIZE_MODES}")
    return out


def compare(base: RunConfig, backbones=("",), visual_modes=VISUAL_MODES, poses=(True, False), seeds=(0, 1, 2),
            select_on: str = "val", task: str = "action", rank_by: str = "f1@50", temporal_models=("",)) -> dict:
    """Extracts, trains and scores every variant x seed; returns what :func:`to_markdown` shows.

    Returns:
        ``{"rows": [...], "decisions": {...}, "select_on", "report_on", "note", ...}``; each row: the
        variant, its features (dim, fingerprint, store, extraction seconds) and, per split, each
        metric's per-seed values, mean and std. ``temporal_models``: ``RunConfig.temporal_model``
        values, ``""`` = the base config's.
    """
    from kit.features.extract import ensure_features
    from kit.results.evaluate import evaluate
    from kit.data.dataset import run_data
    from kit.temporal.train import fit

    if len(set(backbones)) != len(backbones) or not seeds:
        raise ValueError(f"compare needs distinct backbone specs and at least one seed, got {backbones}, {seeds}")
    specs = {b: parse_backbone(b) for b in backbones}  # every spec checked before hours of training
    models = list(dict.fromkeys(m or base.temporal_model for m in temporal_models))
    unknown = [m for m in models if m not in TEMPORAL_MODELS]
    if unknown or not models:
        raise ValueError(f"compare: temporal model(s) {unknown} are not among {', '.join(TEMPORAL_MODELS)}")
    base = base.replace(pipeline="whole_video", freeze_backbone=True)
    data = run_data(base)
    sizes = {k: len(v) for k, v in data.splits.items()}
    tasks = list(dict.fromkeys(t for r in data.records for t in r.labels))
    if task not in tasks:
        raise ValueError(f"compare: --task {task!r} is not a label column of the data ({', '.join(tasks)})")
    if not sizes.get(select_on):
        raise ValueError(f"compare: the data has no {select_on!r} videos to select on (splits: {sizes}); "
                         "add some (splits.csv, val_fraction) or --select_on another split")
    report_on, note = "test", ""
    if not sizes.get("test") or select_on == "test":
        report_on = select_on if not sizes.get("test") else "test"
        note = (f"reported on {report_on!r}, the split that also ranked the variants: optimistic, nothing was "
                "held out" + ("" if sizes.get("test") else " (the data has no test videos)"))
    stamp, rows, machine = time.strftime("%Y%m%d-%H%M%S"), [], _machine()
    given = all(r.features_path is not None for r in data.records)  # MS-TCN layout with features: no backbone
    for spec, over in specs.items():
        for mode in visual_modes:
            cfg = base.replace(**over, visual_mode=mode)
            t0 = time.perf_counter()
            if given:
                feats = {"dim": None, "fingerprint": "given by the dataset", "store": "", "extract_s": 0.0}
            else:
                store, bb, _ = ensure_features(cfg, data.records, output_dir=cfg.output_dir)
                feats = {"dim": bb.feature_dim, "fingerprint": bb.fingerprint, "store": str(store.root),
                         "extract_s": round(time.perf_counter() - t0, 1)}  # loading the backbone included
                del bb
            for pose in poses:
                for model in models:  # the same features, seeds and splits for every temporal model
                    runs = []
                    for seed in seeds:
                        name = f"compare-{stamp}-{len(rows):02d}-s{seed}"
                        t1 = time.perf_counter()
                        run = fit(cfg.replace(use_pose=pose, seed=seed, run_name=name, temporal_model=model))
                        train_s = time.perf_counter() - t1
                        scores = {s: evaluate(run.run_dir, split=s, checkpoint="best")[task]
                                  for s in dict.fromkeys((select_on, report_on))}
                        runs.append({"seed": seed, "run": str(run.run_dir), "train_s": round(train_s, 1),
                                     "best_epoch": run.best_epoch, **scores})
                    rows.append({"backbone": spec or base.resolved_backbone, "visual_mode": mode, "use_pose": pose,
                                 "temporal_model": model, **feats, "seeds": list(seeds), "runs": runs,
                                 **{s: _summary(runs, s) for s in dict.fromkeys((select_on, report_on))}})
    rows.sort(key=lambda r: _key(r, select_on, rank_by), reverse=True)
    return {"rows": rows, "select_on": select_on, "report_on": report_on, "rank_by": rank_by, "task": task,
            "note": note, "decisions": decide(rows, select_on, rank_by), "splits": sizes, "machine": machine,
            "machine_after": _machine(), "config": base.to_dict(), "date": time.strftime("%Y-%m-%d %H:%M")}


def _summary(runs: list[dict], split: str) -> dict:
    """Per metric: the per-seed values, their mean and sample std (None with one seed or no labels)."""
    out = {}
    for k in COLUMNS:
        vals = [r[split][k] for r in runs if r[split].get(k) is not None]
        out[k] = {"values": vals, "mean": statistics.fmean(vals) if vals else None,
                  "std": statistics.stdev(vals) if len(vals) > 1 else None}
    return out


def _key(row: dict, split: str, rank_by: str) -> tuple:
    """The ranking: ``rank_by``, then edit, then acc (means on the selection split; missing = -1)."""
    order = (rank_by,) + tuple(k for k in ("edit", "acc") if k != rank_by)
    return tuple(-1.0 if row[split][k]["mean"] is None else row[split][k]["mean"] for k in order)


def decide(rows: list[dict], split: str, rank_by: str) -> dict:
    """For each factor with several levels: each level's score on ``split`` and the winner, if any.

    A level's score per seed is the mean of ``rank_by`` over the variants at that level (all other
    factors pooled); its spread is the sample std of those per-seed scores over seeds. The best level
    wins only when its lead over the runner-up exceeds the larger of their spreads (with one seed:
    any lead); otherwise ``winner`` is None: the protocol could not decide.
    """
    out = {}
    for factor in FACTORS:
        levels = list(dict.fromkeys(r.get(factor) for r in rows))
        if len(levels) < 2:
            continue
        scores = {}
        for level in levels:
            mine = [r for r in rows if r.get(factor) == level]
            per_seed = [statistics.fmean(v) for v in zip(*(r[split][rank_by]["values"] for r in mine)) if v]
            scores[_label(level)] = {"mean": statistics.fmean(per_seed) if per_seed else None,
                                  "std": statistics.stdev(per_seed) if len(per_seed) > 1 else None}
        ranked = sorted(scores, key=lambda k: -1.0 if scores[k]["mean"] is None else scores[k]["mean"], reverse=True)
        lead, spread = _lead(scores[ranked[0]], scores[ranked[1]])
        out[factor] = {"winner": ranked[0] if lead > spread else None, "lead": lead, "spread": spread,
                       "scores": {k: scores[k] for k in ranked}, "split": split, "metric": rank_by}
    return out


def _label(level) -> str:
    return ("yes" if level else "no") if isinstance(level, bool) else str(level)


def _lead(first: dict, second: dict) -> tuple[float, float]:
    """How far ``first``'s mean is ahead of ``second``'s, and the larger of their stds (0 when unknown)."""
    return (first["mean"] or 0.0) - (second["mean"] or 0.0), max(first["std"] or 0.0, second["std"] or 0.0)


def _fmt(stat: dict | None) -> str:
    if not stat or stat["mean"] is None:
        return "-"
    return f"{stat['mean']:.1f}" + ("" if stat["std"] is None else f" ± {stat['std']:.1f}")


def to_markdown(result: dict) -> str:
    """The comparison as markdown: how it was decided, the ranked table, the factor decisions, the features."""
    sel, rep, by, rows = result["select_on"], result["report_on"], result["rank_by"], result["rows"]
    cfg, m = result["config"], result["machine"]
    n = len(rows[0]["seeds"]) if rows else 0
    lines = [f"{result['task']} task. Variants ranked on **{sel}** by mean {by} over {n} seed(s) "
             f"{rows[0]['seeds'] if rows else ''} (then edit, then acc); **{rep}** reported once per run"
             + ("" if rep == sel else ", never used to choose") + f". Mean ± sample std over seeds; scores in %. "
             f"{'Demo data' if not cfg['data_root'] else cfg['data_root']}; epochs={cfg['epochs']}, "
             f"img_size={cfg['img_size']}, {result['date']}; {m['device']}, load average {m['load']} at the start.",
             ""]
    if result["note"]:
        lines += [f"**Note:** {result['note']}.", ""]
    several = len({r.get("temporal_model") for r in rows}) > 1  # a temporal-model column when they differ
    lines += [f"| rank | backbone | visual_mode | pose | {'temporal model | ' if several else ''}{sel} {by} (selection) | "
              + " | ".join(f"{rep} {k}" for k in COLUMNS) + " |", "|---" * (5 + several + len(COLUMNS)) + "|"]
    lead, spread = _lead(rows[0][sel][by], rows[1][sel][by]) if len(rows) > 1 else (0.0, 0.0)
    for i, r in enumerate(rows, 1):
        mark = "" if i > 1 or len(rows) < 2 else (f" **(best on {sel})**" if lead > spread
                                                  else f" (lead on {sel} within the seed spread)")
        model = f"`{r.get('temporal_model')}` | " if several else ""
        lines.append(f"| {i}{mark} | `{r['backbone']}` | `{r['visual_mode']}` | {'yes' if r['use_pose'] else 'no'} | "
                     f"{model}{_fmt(r[sel][by])} | " + " | ".join(_fmt(r[rep][k]) for k in COLUMNS) + " |")
    if result["decisions"]:
        lines += ["", f"Decided on **{sel}** (mean {by} of the variants at each level, ± std over seeds):"]
        for factor, d in result["decisions"].items():
            levels = " vs ".join(f"{k} {_fmt(v)}" for k, v in d["scores"].items())
            verdict = (f"**{d['winner']}**" if d["winner"] is not None else
                       f"undecided: the lead ({d['lead']:.1f}) is not larger than the seed spread ({d['spread']:.1f})")
            lines.append(f"- {factor.replace('use_pose', 'pose')}: {verdict} ({levels})")
    lines += ["", "| backbone | visual_mode | D | features (fingerprint) | load + extraction s (once) |",
              "|---|---|---|---|---|"]
    for r in {(r["backbone"], r["visual_mode"]): r for r in rows}.values():
        lines.append(f"| `{r['backbone']}` | `{r['visual_mode']}` | {r['dim'] or '-'} | `{r['fingerprint']}` | "
                     f"{r['extract_s']} |")
    return "\n".join(lines)


def latest_comparison(output_dir: str | Path = "outputs") -> str | None:
    """The Markdown table of the newest ``compare`` under ``<output_dir>/compare/``, or None when there is none."""
    tables = sorted((resolve_path(output_dir) / "compare").glob("*.md"))
    return tables[-1].read_text() if tables else None


def _machine() -> dict:
    """Where the numbers were measured: device and load (timings depend on both)."""
    import torch

    device = (f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
              else f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"device": device, "load": round(load[0], 2), "load_1_5_15": [round(x, 2) for x in load]}


def main_compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m kit compare", description=__doc__.splitlines()[0])
    p.add_argument("--backbones", nargs="+", default=[""], metavar="SPEC",
                   help="backbone specs NAME[:SOURCE][,KEY=VALUE...] (default: the config's backbone: tiny on the "
                        "demo data, auto on yours)")
    p.add_argument("--visual_modes", nargs="+", default=list(VISUAL_MODES), choices=VISUAL_MODES,
                   help="visual modes (default: clip tokens)")
    p.add_argument("--pose", nargs="+", default=["yes", "no"], choices=("yes", "no"),
                   help="pose-graph branch settings (default: yes no)")
    p.add_argument("--temporal_models", nargs="+", default=[""], choices=TEMPORAL_MODELS, metavar="MODEL",
                   help=f"temporal models, each on the same features, seeds and splits ({', '.join(TEMPORAL_MODELS)}; "
                        "default: the config's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds per variant (default 0 1 2)")
    p.add_argument("--select_on", default="val", choices=("val", "test"),
                   help="the split that ranks the variants and decides each factor (default val; test is optimistic)")
    p.add_argument("--rank_by", default="f1@50", choices=COLUMNS, help="the ranking metric (default f1@50)")
    p.add_argument("--task", default="action", help="the label column scored (default action)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default 40, or the config's)")
    p.add_argument("--img_size", type=int, default=None,
                   help="backbone resolution unless a spec sets img_size (default 64 on the demo data, else the "
                        "config's)")
    p.add_argument("--data_root", default=None, type=cli_path, help="data ('' = the embedded demo data)")
    p.add_argument("--test_fraction", type=float, default=None,
                   help="held-out share of videos when there is no splits.csv (default: the config's)")
    p.add_argument("--config", default="", type=cli_path, help="a config.json for every other field (the temporal model, lr, ...)")
    p.add_argument("--output_dir", default=None, type=cli_path, help="runs, features and compare/ go here (default outputs)")
    a = p.parse_args(argv)
    flags = {k: v for k, v in dict(epochs=a.epochs, data_root=a.data_root, test_fraction=a.test_fraction,
                                   output_dir=a.output_dir, img_size=a.img_size).items() if v is not None}
    try:
        base = (RunConfig.load(a.config) if a.config else RunConfig(epochs=40)).replace(**flags)
        base = base.replace(**{k: cli_path(getattr(base, k)) for k in PATH_FIELDS})  # relative: from the cwd
        if a.img_size is None and base.uses_demo_data and not a.config:
            base = base.replace(img_size=64)  # the demo's 128 px frames and the tiny backbone
        result = compare(base, tuple(a.backbones), tuple(dict.fromkeys(a.visual_modes)),
                         tuple(x == "yes" for x in dict.fromkeys(a.pose)), tuple(a.seeds), a.select_on, a.task,
                         a.rank_by, tuple(a.temporal_models))
    except (ValueError, TypeError, RuntimeError, FileNotFoundError) as e:  # a bad spec, config, split or backbone
        print(f"error: {e}")
        return 2
    table = to_markdown(result)
    out = resolve_path(base.output_dir) / "compare"
    out.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{stem}.md").write_text(table + "\n")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    print(table)
    print(f"\nwritten: {out / stem}.md and .json")
    return 0
