"""`--help` of every command renders as a reader expects: flags without a `<bool>` type, usage
lines naming arguments the click way (`QUERY...`, `FILE`, `[ID]...`), never `{QUERY...}...`."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from monitor.cli import app


def _commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [()]

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append((*path, name))
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _commands()


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"search", "import-opml", "alerts", "alerts retry", "once", "topics test"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "monitor")
def test_help_exits_0_without_odd_metavars(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Usage: monitor" in result.output
    assert "{" not in result.output and "}" not in result.output, result.output
    assert "<bool>" not in result.output, result.output


def test_usage_lines_name_arguments_plainly() -> None:
    runner = CliRunner()

    def usage(*args: str) -> str:
        output = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "100"}).output
        return next(line.strip() for line in output.splitlines() if "Usage:" in line)

    assert usage("search") == "Usage: monitor search [OPTIONS] QUERY..."
    assert usage("import-opml") == "Usage: monitor import-opml [OPTIONS] FILE"
    assert usage("alerts", "retry") == "Usage: monitor alerts retry [OPTIONS] [ID]..."
