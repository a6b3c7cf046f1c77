"""MkDocs hooks: what the reference pages show is generated from the code at build time, never pasted.

- ``<!-- kit:config-table -->`` becomes :func:`kit.config.config_table` (every ``RunConfig`` field,
  its type, default and comment);
- ``<!-- kit:cli-reference -->`` becomes every command's flags, read from its own argparse parser;
- the numbered notebooks in ``notebooks/`` are added to the site as pages (rendered by mkdocs-jupyter
  from the committed files, without executing them).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from unittest import mock

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
CONFIG_MARK, CLI_MARK = "<!-- kit:config-table -->", "<!-- kit:cli-reference -->"


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """``{command: its ArgumentParser}`` for every ``python -m kit`` command, built by the command itself."""
    from kit.__main__ import COMMANDS

    parsers: dict[str, argparse.ArgumentParser] = {}
    current = [""]

    def capture(self, args=None, namespace=None):  # the command built its parser: keep it, run nothing
        parsers.setdefault(current[0], self)
        raise SystemExit(0)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        for name, fn in COMMANDS.items():
            current[0] = name
            try:
                fn([])
            except SystemExit:
                pass
    return parsers


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def cli_reference() -> str:
    """Markdown: per command, its description and a table of its arguments (flag, default, meaning)."""
    out = []
    for name, parser in command_parsers().items():
        out += [f"### `python -m kit {name}`", "", _cell(parser.description or ""), "",
                "| argument | default | meaning |", "|---|---|---|"]
        for a in parser._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            flag = ", ".join(f"`{o}`" for o in a.option_strings) or f"`{a.dest}` (positional)"
            default = "" if a.default in (None, argparse.SUPPRESS) or a.required else f"`{a.default!r}`"
            out.append(f"| {flag} | {default} | {_cell(a.help or '')} |")
        out.append("")
    return "\n".join(out)


def _literal_brackets(text: str) -> str:
    """Comments as written: ``[Poses/]`` means "optional", not a cross-reference, and ``<data_root>`` is a
    placeholder, not an HTML tag: escape brackets and angle brackets outside code spans."""
    def plain(t: str) -> str:
        return re.sub(r"([\[\]])", r"\\\1", t).replace("<", "&lt;").replace(">", "&gt;")

    parts = text.split("`")
    return "`".join(plain(p) if i % 2 == 0 else p for i, p in enumerate(parts))


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CONFIG_MARK in markdown:
        from kit.config import config_table

        markdown = markdown.replace(CONFIG_MARK, _literal_brackets(config_table()))
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, _literal_brackets(cli_reference()))
    return markdown


@event_priority(100)  # before mkdocs-jupyter's own on_files, which turns .ipynb files into pages
def on_files(files, config):
    """The committed notebooks become pages under ``notebooks/`` (outputs stripped: code and text only)."""
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        files.append(File(f"notebooks/{nb.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
