"""The documentation site stays true: it builds strictly, its reference pages come from the code, and
every `python -m kit` command it shows is one the kit's parsers accept."""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit.config import field_help, field_names

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_site_builds_strictly_with_generated_references(tmp_path):
    proc = _build(ROOT, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    assert all(f"<code>{name}</code>" in config for name in field_names())  # generated from RunConfig
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "python -m kit evaluate" in cli and "--background" in cli
    assert (tmp_path / "site" / "notebooks" / "03_train" / "index.html").is_file()  # notebooks as pages


def test_a_dead_internal_link_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    for name in ("docs", "notebooks"):
        shutil.copytree(ROOT / name, copy / name)
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [the missing page](guides/no-such-page.md).\n")
    proc = _build(copy, tmp_path / "site")
    assert proc.returncode != 0 and "no-such-page.md" in proc.stderr + proc.stdout


@pytest.mark.parametrize("name", field_names())
def test_every_config_field_has_a_comment(name):
    """The configuration reference is generated from these comments: a field without one fails here."""
    assert field_help().get(name, "").strip(), f"RunConfig.{name} has no comment in kit/config.py"


def test_the_cli_reference_lists_every_command_and_flag():
    hooks = _hooks()
    text = hooks.cli_reference()
    from kit.__main__ import COMMANDS

    parsers = hooks.command_parsers()
    assert set(parsers) == set(COMMANDS)
    for name, parser in parsers.items():
        assert f"`python -m kit {name}`" in text
        for action in parser._actions:
            for flag in action.option_strings if not isinstance(action, argparse._HelpAction) else ():
                assert f"`{flag}`" in text, f"{name} {flag}"


def _documented_commands():
    for path in [ROOT / "README.md", *PAGES]:
        text = path.read_text().replace("\\\n", " ")
        for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S):
            for line in block.splitlines():
                line = line.strip().split("  #")[0].strip()
                if not line.startswith("python -m kit ") or re.search(r"[\[\]<>|…]|\.\.\.|\{|\}", line):
                    continue  # a synopsis with placeholders, not a command
                yield path.relative_to(ROOT), line


def test_every_documented_command_is_one_the_kit_accepts():
    hooks = _hooks()
    parsers = hooks.command_parsers()
    commands = list(_documented_commands())
    assert len(commands) > 10
    for where, line in commands:
        argv = shlex.split(line)[3:]
        argv = [a for a in argv if a != "--debug"]
        assert argv and argv[0] in parsers, f"{where}: unknown command in {line!r}"
        try:
            parsers[argv[0]].parse_args(argv[1:])
        except SystemExit as e:
            assert e.code == 0, f"{where}: {line!r} is refused by the kit's parser"
