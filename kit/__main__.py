"""Command line: ``python -m kit COMMAND [flags] [--debug]``.

``train`` takes every RunConfig field as a flag of the same name (the seed's flags among them:
``--annotations DIR --videos DIR --model_type action_only --epochs 50 --batch_size 2
--train_T 120 --val_T 120``). Multi-GPU: ``accelerate launch -m kit train ...``.

Every command fails the same way: an expected failure (a :class:`kit.errors.KitError` such as
bad data or a bad config value, a file the OS will not give, a non-finite loss, out of memory;
also when raised inside a DataLoader worker) prints one ``error: ...`` message on stderr and
exits 1; ``--debug`` (accepted by every command, anywhere on the line) shows its traceback
instead. Any other exception is a bug and keeps its traceback. Ctrl-C exits 130 with what was
saved. A new command gets all of this by being registered: ``COMMANDS["name"] = fn`` where
``fn(argv) -> int``.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback

from kit.config import (BACKBONES, MIXED_PRECISION, MODEL_TYPES, VISUAL_MODES, RunConfig, field_help, field_types,
                        json_object)
from kit.errors import ConfigError, RunInterrupted, is_expected, one_line

CHOICES = {"model_type": MODEL_TYPES, "backbone": BACKBONES, "visual_mode": VISUAL_MODES,
           "mixed_precision": MIXED_PRECISION}
DEBUG_HELP = ("common flags (every command):\n  --debug   on an error, show the full Python traceback instead of "
              "the one-line message")
MAX_LINES = 25  # a DataError listing hundreds of problems is cut here; kit.data.validate lists them all


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kit train", description="Train a per-frame action model (every RunConfig field "
        "is a flag). With no data flags the embedded demo data and the tiny backbone are used.",
        epilog="Multi-GPU / multi-node: accelerate launch -m kit train [flags]. "
        "Continue an interrupted run: --run_name NAME --resume; start it afresh: --run_name NAME --overwrite.")
    p.add_argument("--config", default="", help="a config.json to start from; flags override it")
    defaults, helps = RunConfig(), field_help()
    for name, typ in field_types().items():
        default = getattr(defaults, name)
        if typ is bool:
            p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                           help=f"{helps.get(name, '')} (default: {default})")
        elif typ is dict:
            p.add_argument(f"--{name}", type=json_object, default=None, metavar="JSON",
                           help=f"{helps.get(name, '')}, as JSON, e.g. '{{\"action\": 1.0}}' (default: {default})")
        else:
            p.add_argument(f"--{name}", type=typ, default=None, choices=CHOICES.get(name),
                           metavar="{" + ",".join(c for c in CHOICES[name] if c) + "}" if name in CHOICES
                           else typ.__name__.upper(),
                           help=f"{helps.get(name, '')} (default: {default!r})")
    return p


def config_from_args(argv: list[str]) -> RunConfig:
    """The RunConfig of a ``train`` command line; :class:`ConfigError` for an unusable value or file."""
    args = vars(train_parser().parse_args(argv))
    config = args.pop("config")
    base = RunConfig.load(config).to_dict() if config else {}
    base.update({k: v for k, v in args.items() if v is not None})
    try:
        return RunConfig.from_dict(base)
    except TypeError as e:  # a ConfigTypeError is both; keep the message, drop the traceback
        raise ConfigError(str(e)) from None


def cmd_train(argv: list[str]) -> int:
    cfg = config_from_args(argv)  # before importing torch: --help stays instant
    from kit.temporal.train import fit

    result = fit(cfg)
    print(f"run folder: {result.run_dir}")
    print(json.dumps(result.metrics, indent=2, default=str))
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


def run_command(fn, argv: list[str], debug: bool = False) -> int:
    """Runs one command ``fn(argv) -> int`` with the kit's error handling; returns the exit code."""
    try:
        return fn(argv) or 0
    except KeyboardInterrupt as e:
        if debug:
            traceback.print_exc()
        print(str(e) if isinstance(e, RunInterrupted) and str(e) else "interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - sorted into user errors and bugs right here
        if debug or not is_expected(e):
            raise
        print(f"error: {_cut(one_line(e))}", file=sys.stderr)
        return 1


def _cut(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= MAX_LINES:
        return text
    return "\n".join(lines[:MAX_LINES] + [f"... and {len(lines) - MAX_LINES} more lines (--debug shows all; "
                                          "kit.data.validate(root) lists every data problem as a table)"])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        print("\ncommands: " + ", ".join(COMMANDS) + "   (python -m kit COMMAND --help)\n" + DEBUG_HELP)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    fn, rest = COMMANDS[argv[0]], argv[1:]
    if "-h" in rest or "--help" in rest:
        try:
            return fn(rest) or 0
        except SystemExit as e:  # argparse printed the command's own help
            print("\n" + DEBUG_HELP)
            return e.code if isinstance(e.code, int) else 0
    return run_command(fn, rest, debug)


if __name__ == "__main__":
    sys.exit(main())
