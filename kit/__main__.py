"""Command line: ``python -m kit COMMAND [flags] [--debug]``.

Commands: ``train``, ``extract``, ``evaluate``, ``predict``, ``export``, ``crossval``, ``demo-data``,
``compare``, ``bench``, ``poses``, ``import-labels``, ``import-model``, ``suggest``.

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

from kit.config import (CHOICES, PATH_FIELDS, RunConfig, cli_path, field_help, field_types, json_object,
                        positive_int)
from kit.errors import ConfigError, RunInterrupted, is_expected, one_line

DEBUG_HELP = ("common flags (every command):\n  --debug   on an error, show the full Python traceback instead of "
              "the one-line message")
MAX_LINES = 25  # a DataError listing hundreds of problems is cut here; kit.data.validate lists them all


def train_parser(prog: str = "python -m kit train", description: str = "", epilog: str = "") -> argparse.ArgumentParser:
    """Every RunConfig field as a flag (plus ``--config``): ``train``, and the commands that take a run's config."""
    p = argparse.ArgumentParser(
        prog=prog, description=description or "Train a per-frame action model (every RunConfig field "
        "is a flag). With no data flags the embedded demo data and the tiny backbone are used.",
        epilog=epilog or "Multi-GPU / multi-node: accelerate launch -m kit train [flags]. "
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
    return config_of(vars(train_parser().parse_args(argv)))


def config_of(args: dict) -> RunConfig:
    """The RunConfig of parsed ``train_parser`` flags: ``--config`` first, the flags given override it."""
    config = args.pop("config")
    base = RunConfig.load(cli_path(config)).to_dict() if config else {}
    base.update({k: v for k, v in args.items() if v is not None and k in field_types()})
    defaults = RunConfig()
    for name in PATH_FIELDS:  # relative paths (flags, the config file's, the defaults) are from the cwd
        base[name] = cli_path(base.get(name, getattr(defaults, name)))
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


def cmd_extract(argv: list[str]) -> int:
    p = train_parser("python -m kit extract", "Extract per-frame features of every video of a dataset (one "
                     "sequential decode per video, each clip embedded once) into <output_dir>/features/: "
                     "features/<video>.npy (D, L) + a manifest. Takes train's flags; videos already done are skipped.",
                     "Several GPUs: accelerate launch -m kit extract [flags] (videos are shared by rank).")
    p.add_argument("--clip_batch", type=positive_int, default=None, help="clips per forward pass (default: 1 on a "
                   "CPU, 8 on a GPU; measured in kit bench)")
    args = vars(p.parse_args(argv))
    clip_batch = args.pop("clip_batch")
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
    p.add_argument("--out", required=True, type=cli_path, help="the folder to write (new, empty, or an earlier export)")
    p.add_argument("--folds", type=int, default=0, help="0: the kit's split as fold 1; K >= 2: K seeded folds by video")
    p.add_argument("--unlabeled_as", default="", help="a class name for unlabeled frames (default: refuse them)")
    p.add_argument("--clip_batch", type=positive_int, default=None, help="clips per forward pass when extracting "
                   "(default: 1 on a CPU, 8 on a GPU)")
    args = vars(p.parse_args(argv))
    out, folds, unlabeled, clip_batch = (args.pop(k) for k in ("out", "folds", "unlabeled_as", "clip_batch"))
    cfg = config_of(args)
    from kit.features.export import export_dataset

    path = export_dataset(cfg, out, folds=folds, unlabeled_as=unlabeled, batch_size=clip_batch)
    print(f"wrote {path}: features/, groundTruth/, mapping.txt, splits/ (MS-TCN, ASFormer, DiffAct read it as is)")
    return 0


def cmd_poses(argv: list[str]) -> int:
    from kit.data.pose_estimation import main_poses

    return main_poses(argv)


def cmd_import_labels(argv: list[str]) -> int:
    from kit.data.label_formats import main_import

    return main_import(argv)


def cmd_import_model(argv: list[str]) -> int:
    from kit.temporal.upstream import main_import

    return main_import(argv)


def cmd_predict(argv: list[str]) -> int:
    from kit.results.predict import main_predict

    return main_predict(argv)


def cmd_suggest(argv: list[str]) -> int:
    from kit.results.suggest import main_suggest

    return main_suggest(argv)


def cmd_crossval(argv: list[str]) -> int:
    p = train_parser("python -m kit crossval", "Train and evaluate every fold of a dataset in the MS-TCN layout; "
                     "print the per-fold table and the mean +/- std over folds.")
    p.add_argument("--folds", type=int, nargs="*", default=None, help="fold numbers (default: every fold there)")
    p.add_argument("--background", nargs="*", default=None, metavar="CLASS",
                   help="class names left out of edit and F1@k; with no name, every class counts (default: the "
                        "MS-TCN protocol, `background` left out when the data has it, as eval.py)")
    args = vars(p.parse_args(argv))
    folds, background = args.pop("folds"), args.pop("background")
    from kit.results.crossval import crossval, to_markdown

    res = crossval(config_of(args), folds, background)
    print(to_markdown(res))
    print(f"\nwritten: {res['written']} (and .json)")
    return 0


COMMANDS = {"train": cmd_train, "extract": cmd_extract, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "export": cmd_export, "crossval": cmd_crossval, "demo-data": cmd_demo, "compare": cmd_compare,
            "bench": cmd_bench, "poses": cmd_poses, "import-labels": cmd_import_labels, "import-model": cmd_import_model,
            "suggest": cmd_suggest}


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
