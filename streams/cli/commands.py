"""Discovers the `mrr` subcommands: every module in streams/cli/ that defines `command`.

Subcommand modules must import heavy dependencies (Kafka, Faust, Litestar) inside their
functions so that `mrr --help` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

import streams.cli as package

_NOT_COMMANDS = {"main", "commands"}


def register(group: click.Group) -> None:
    """Attach every subcommand module's `command` to the top-level group."""
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name in _NOT_COMMANDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"streams.cli.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)
