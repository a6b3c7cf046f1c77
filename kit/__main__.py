"""Command line: ``python -m kit {train,evaluate,demo-data,compare,bench}``.

``train`` takes every RunConfig field as a flag of the same name (the seed's flags among them:
``--annotations DIR --videos DIR --model_type action_only --epochs 50 --batch_size 2
--train_T 120 --val_T 120``). Multi-GPU: ``accelerate launch -m kit train ...``.
"""
from __future__ import annotations

import argparse
import json
import sys

from kit.config import (BACKBONES, DATASET_FORMATS, LR_SCHEDULES, MIXED_PRECISION, MODEL_TYPES, OPTIMIZERS, RECIPES,
                        VISUAL_MODES, RunConfig, field_help, field_types)

CHOICES = {"model_type": MODEL_TYPES, "backbone": BACKBONES, "visual_mode": VISUAL_MODES,
           "mixed_precision": MIXED_PRECISION, "dataset_format": DATASET_FORMATS, "recipe": RECIPES,
           "optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES}


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kit train", description="Train a per-frame action model (every RunConfig field "
        "is a flag). With no data flags the embedded demo data and the tiny backbone are used.",
        epilog="Multi-GPU / multi-node: accelerate launch -m kit train [flags]. "
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
    args = vars(train_parser().parse_args(argv))
    config = args.pop("config")
    base = RunConfig.load(config).to_dict() if config else {}
    base.update({k: v for k, v in args.items() if v is not None})
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


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "demo-data": cmd_demo, "compare": cmd_compare,
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
