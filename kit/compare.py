"""Visual modes compared: ``python -m kit compare`` trains and evaluates one run per variant.

Every variant gets the same budget (data, epochs, windows, seeds, backbone); only ``visual_mode``
and ``use_pose`` change. The best mode is the one with the best F1@50 (then edit, then accuracy)
averaged over its pose settings: the pose branch alone nearly solves the demo, so the runs without
pose are the ones that tell the visual modes apart. The result is a markdown table (frame accuracy, edit, F1@{10,25,50} of
the ``action`` task on the chosen split) printed and written to
``<output_dir>/compare/<timestamp>.{md,json}``: the README's comparison table comes from it.
"""
from __future__ import annotations

import argparse
import json
import time

from kit.config import VISUAL_MODES, RunConfig, resolve_path
from kit.results.evaluate import evaluate
from kit.temporal.runs import run_splits
from kit.temporal.train import fit

COLUMNS = ("acc", "edit", "f1@10", "f1@25", "f1@50")


def compare(base: RunConfig, modes=VISUAL_MODES, poses=(True, False), seeds=(0,), split: str = "test",
            task: str = "action") -> list[dict]:
    """One row per (visual_mode, use_pose): ``task``'s metrics on ``split`` in percent, mean over seeds."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for mode in modes:
        for pose in poses:
            scores, t0 = [], time.perf_counter()
            for seed in seeds:
                name = f"compare-{stamp}-{mode}-{'pose' if pose else 'nopose'}-s{seed}"
                run = fit(base.replace(visual_mode=mode, use_pose=pose, seed=seed, run_name=name))
                scores.append(evaluate(run.run_dir, split=split, checkpoint="best")[task])
            rows.append({"visual_mode": mode, "use_pose": pose, "seeds": len(seeds),
                         "train_s": round((time.perf_counter() - t0) / len(seeds), 1),
                         **{k: round(sum(float(s[k]) for s in scores) / len(scores), 1) for k in COLUMNS}})
    return rows


def best_mode(rows: list[dict]) -> str:
    """The visual mode with the best F1@50 (then edit, then accuracy) averaged over its pose settings."""
    def score(mode):
        mine = [r for r in rows if r["visual_mode"] == mode]
        return tuple(sum(r[k] for r in mine) / len(mine) for k in ("f1@50", "edit", "acc"))
    return max(dict.fromkeys(r["visual_mode"] for r in rows), key=score)


def to_markdown(rows: list[dict], header: str = "") -> str:
    best = best_mode(rows)
    lines = [header] if header else []
    lines += ["| visual_mode | pose | acc | edit | F1@10 | F1@25 | F1@50 |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = " **(best)**" if r["visual_mode"] == best else ""
        lines.append(f"| `{r['visual_mode']}`{mark} | {'yes' if r['use_pose'] else 'no'} | "
                     + " | ".join(f"{r[k]:.1f}" for k in COLUMNS) + " |")
    return "\n".join(lines)


def _split_sizes(cfg: RunConfig) -> dict[str, int]:
    """Videos per split, exactly as training will split them."""
    return {k: len(v) for k, v in run_splits(cfg)[1].items()}


def main_compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m kit compare", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40, help="epochs per variant (default 40)")
    p.add_argument("--backbone", default="", help="backbone for every variant ('' = tiny on the demo data)")
    p.add_argument("--data_root", default="", help="data ('' = the embedded demo data)")
    p.add_argument("--img_size", type=int, default=64)
    p.add_argument("--train_T", type=int, default=128)
    p.add_argument("--val_T", type=int, default=128)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds averaged per variant")
    p.add_argument("--split", default="test", help="split the table reports (default test; val when the data has "
                   "no test videos)")
    p.add_argument("--test_fraction", type=float, default=0.0, help="held-out share of videos when there is no "
                   "splits.csv (default 0)")
    p.add_argument("--output_dir", default="outputs")
    a = p.parse_args(argv)
    base = RunConfig(data_root=a.data_root, backbone=a.backbone, epochs=a.epochs, img_size=a.img_size,
                     train_T=a.train_T, val_T=a.val_T, output_dir=a.output_dir, test_fraction=a.test_fraction)
    split = a.split if _split_sizes(base).get(a.split) else "val"  # checked before hours of training
    if split != a.split:
        print(f"[warn] the data has no {a.split!r} videos: reporting the val split instead")
    rows = compare(base, seeds=tuple(a.seeds), split=split)
    header = (f"Action task, {split} split; backbone={base.resolved_backbone}, epochs={a.epochs}, "
              f"img_size={a.img_size}, train_T={a.train_T}, val_T={a.val_T}, mean over seeds {a.seeds}; "
              f"{time.strftime('%Y-%m-%d')}.\n")
    table = to_markdown(rows, header)
    out = resolve_path(a.output_dir) / "compare"
    out.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{stem}.md").write_text(table + "\n")
    (out / f"{stem}.json").write_text(json.dumps({"config": base.to_dict(), "rows": rows,
                                                  "best_mode": best_mode(rows)}, indent=2))
    print(table)
    print(f"\nwritten: {out / stem}.md")
    return 0
