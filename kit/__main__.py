"""Command line: ``python -m kit {train,extract,evaluate,predict,export,crossval,demo-data,compare,bench}``.

``train`` takes every RunConfig field as a flag of the same name (the seed's flags among them:
``--annotations DIR --videos DIR --model_type action_only --epochs 50 --batch_size 2
--train_T 120 --val_T 120``). Multi-GPU: ``accelerate launch -m kit train ...``.
"""
from __future__ import annotations

import argparse
import json
import sys

from kit.config import CHOICES, RunConfig, field_help, field_types


def train_parser(prog: str = "python -m kit train", description: str = "", epilog: str = "") -> argparse.ArgumentParser:
    """Every RunConfig field as a flag (plus ``--config``): ``train``, and the commands that take a run's config."""
    p = argparse.ArgumentParser(
        prog=prog, description=description or "Train a per-frame action model (every RunConfig field "
        "is a flag). With no data flags the embedded demo data and the tiny backbone are used.",
        epilog=epilog or "Multi-GPU / multi-node: accelerate launch -m kit train [flags]. "
        "Continue an interrupted run: --run_name NAME --resume.")
    p.add_argument("--config", default="", help="a config.json to start from; flags override it")
    defaults, helps = RunConfig(), field_help()
    for name, typ in field_types().items():
        default = getattr(defaults, name)
        if typ is bool:
            p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                           help=f"{helps.get(name, '')} (default: {default})")
        elif typ is dict:
            p.add_argument(f"--{name}", type=json.loads, default=None, metavar="JSON",
                           help=f"{helps.get(name, '')}, as JSON, e.g. '{{\"action\": 1.0}}' (default: {default})")
        else:
            p.add_argument(f"--{name}", type=typ, default=None, choices=CHOICES.get(name),
                           metavar="{" + ",".join(c for c in CHOICES[name] if c) + "}" if name in CHOICES
                           else typ.__name__.upper(),
                           help=f"{helps.get(name, '')} (default: {default!r})")
    return p


def config_from_args(argv: list[str]) -> RunConfig:
    return config_of(vars(train_parser().parse_args(argv)))


def config_of(args: dict) -> RunConfig:
    """The RunConfig of parsed ``train_parser`` flags: ``--config`` first, the flags given override it."""
    config = args.pop("config")
    base = RunConfig.load(config).to_dict() if config else {}
    base.update({k: v for k, v in args.items() if v is not None and k in field_types()})
    try:
        return RunConfig.from_dict(base)
    except (TypeError, ValueError) as e:
        sys.exit(f"error: {e}")


def cmd_train(argv: list[str]) -> int:
    cfg = config_from_args(argv)  # before importing torch: --help stays instant
    from kit.temporal.train import fit

    try:
        result = fit(cfg)
    except (RuntimeError, ValueError, FileNotFoundError, FloatingPointError) as e:
        if type(e).__name__ == "DataError" or isinstance(e, (FileNotFoundError, FloatingPointError)) \
                or "out of memory" in str(e):
            sys.exit(f"error: {e}")
        raise
    print(f"run folder: {result.run_dir}")
    print(json.dumps(result.metrics, indent=2))
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    from kit.results.evaluate import main_evaluate

    return main_evaluate(argv)


def cmd_demo(argv: list[str]) -> int:
    from kit.data.demo import main_demo

    return main_demo(argv)


def cmd_compare(argv: list[str]) -> int:
    from kit.compare import main_compare

    return main_compare(argv)


def cmd_bench(argv: list[str]) -> int:
    from kit.bench import main_bench

    return main_bench(argv)


def cmd_extract(argv: list[str]) -> int:
    p = train_parser("python -m kit extract", "Extract per-frame features of every video of a dataset (one "
                     "sequential decode per video, each clip embedded once) into <output_dir>/features/: "
                     "features/<video>.npy (D, L) + a manifest. Takes train's flags; videos already done are skipped.",
                     "Several GPUs: accelerate launch -m kit extract [flags] (videos are shared by rank).")
    p.add_argument("--clip_batch", type=int, default=8, help="clips per forward pass (default 8)")
    args = vars(p.parse_args(argv))
    clip_batch = args.pop("clip_batch")
    if clip_batch < 1:
        p.error(f"--clip_batch must be >= 1, got {clip_batch}")
    cfg = config_of(args)
    from kit.features.extract import extract_dataset

    store, done = extract_dataset(cfg, batch_size=clip_batch)
    new = [d for d in done if not d.skipped]
    frames, secs = sum(d.frames for d in new), sum(d.seconds for d in new)
    print(f"{len(done)} video(s): {len(new)} extracted ({frames} frames in {secs:.1f} s"
          f"{f', {frames / secs:.0f} frames/s' if secs else ''}), {len(done) - len(new)} already current")
    print(f"features: {store.root}")
    return 0


def cmd_export(argv: list[str]) -> int:
    p = train_parser("python -m kit export", "Write a dataset in the kit's layout and its features (extracted where "
                     "missing) as the MS-TCN layout: features/, groundTruth/, mapping.txt, splits/.")
    p.add_argument("--out", required=True, help="the folder to write (new, empty, or an earlier export)")
    p.add_argument("--folds", type=int, default=0, help="0: the kit's split as fold 1; K >= 2: K seeded folds by video")
    p.add_argument("--unlabeled_as", default="", help="a class name for unlabeled frames (default: refuse them)")
    p.add_argument("--clip_batch", type=int, default=8, help="clips per forward pass when extracting (default 8)")
    args = vars(p.parse_args(argv))
    out, folds, unlabeled, clip_batch = (args.pop(k) for k in ("out", "folds", "unlabeled_as", "clip_batch"))
    cfg = config_of(args)
    from kit.features.export import export_dataset

    path = export_dataset(cfg, out, folds=folds, unlabeled_as=unlabeled, batch_size=clip_batch)
    print(f"wrote {path}: features/, groundTruth/, mapping.txt, splits/ (MS-TCN, ASFormer, DiffAct read it as is)")
    return 0


def cmd_predict(argv: list[str]) -> int:
    from kit.results.predict import main_predict

    return main_predict(argv)


def cmd_crossval(argv: list[str]) -> int:
    from kit.results.crossval import main_crossval

    return main_crossval(argv)


COMMANDS = {"train": cmd_train, "extract": cmd_extract, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "export": cmd_export, "crossval": cmd_crossval, "demo-data": cmd_demo, "compare": cmd_compare,
            "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        print("\ncommands: " + ", ".join(COMMANDS) + "   (python -m kit COMMAND --help)")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
