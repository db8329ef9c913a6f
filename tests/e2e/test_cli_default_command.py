"""`livestudio` with only options opens the TUI (`livestudio [tui] [--server URL]`)."""

import pytest

from cli.main import build_parser, cmd_tui, with_default_command


@pytest.mark.parametrize(
    ("argv", "server", "project"),
    [
        ([], None, None),
        (["--server", "http://studio:8000"], "http://studio:8000", None),
        (["--project", "mnist", "--server", "http://s"], "http://s", "mnist"),
        (["tui", "--server", "http://s"], "http://s", None),
    ],
)
def test_options_alone_open_the_tui(
    argv: list[str], server: str | None, project: str | None
) -> None:
    args = build_parser().parse_args(with_default_command(argv))
    assert args.func is cmd_tui
    assert (args.server, args.project) == (server, project)


def test_commands_and_help_are_not_taken_for_the_tui() -> None:
    assert with_default_command(["serve", "--port", "1"]) == ["serve", "--port", "1"]
    assert with_default_command(["--help"]) == ["--help"]
