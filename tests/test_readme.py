"""The README documents every config field, every CLI flag, and the test command CI runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kit.config import RunConfig, field_names

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", field_names())
def test_every_config_field_is_documented_with_its_default(name):
    row = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"README's configuration table has no row for {name}"
    default = getattr(RunConfig(), name)
    shown = '""' if default == "" else (f'"{default}"' if isinstance(default, str) else repr(default))
    assert f"`{shown}`" in row, f"README row for {name} does not show its default {shown}"


def test_configuration_table_is_generated_from_runconfig():
    """The table is `kit.config.config_table()` verbatim: a new field, default or comment shows up in
    the README or this fails (regenerate with: python -c "from kit.config import config_table; print(config_table())")."""
    from kit.config import config_table

    assert config_table() in README


def _flags(parser) -> set[str]:
    return {opt for a in parser._actions for opt in a.option_strings if opt.startswith("--") and opt != "--help"}


def test_every_subcommand_flag_is_documented():
    import argparse
    from unittest import mock

    from kit import bench, compare
    from kit.data import demo
    from kit.results import evaluate, suggest
    parsers = {}

    def capture(self, args=None, namespace=None):  # record each command's parser, then stop
        parsers[self.prog] = self
        raise SystemExit(0)
    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture):
        for main in (evaluate.main_evaluate, demo.main_demo, compare.main_compare, bench.main_bench,
                     suggest.main_suggest):
            with pytest.raises(SystemExit):
                main([])
    assert len(parsers) == 5, parsers.keys()
    for prog, parser in parsers.items():
        for flag in _flags(parser) - {"--num-videos"}:
            assert flag in README, f"{prog} {flag} is not in the README"


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in README and re.search(r"^python -m pytest", ci, re.M)
    assert "pip install -r requirements.txt" in README and "requirements.txt" in ci


def test_no_placeholder_left():
    for marker in ("NOTEBOOKS_SECTION", "COMPARE_SECTION", "PERFORMANCE_SECTION", "CONFIG_TABLE", "TODO"):
        assert marker not in README
