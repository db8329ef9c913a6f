"""`livestudio` with only options opens the TUI (`livestudio [tui] [--server URL]`)."""

from pathlib import Path

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


def test_version_is_the_programs_own(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert with_default_command(["--version"]) == ["--version"]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"livestudio {version('livestudio')}"


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        (["--server="], None, "--server ''"),
        (["--server", "ftp://studio"], None, "--server 'ftp://studio'"),
        (["login", "--server", "studio:8000", "-u", "a", "--password-stdin"], None, "studio:8000"),
        ([], "localhost:8000", "LIVESTUDIO_SERVER 'localhost:8000'"),
    ],
)
def test_a_server_that_is_not_a_url_is_refused_in_one_line(
    argv: list[str],
    env: str | None,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from cli.main import main

    monkeypatch.setenv("LIVESTUDIO_CONFIG_DIR", str(tmp_path))
    if env is None:
        monkeypatch.delenv("LIVESTUDIO_SERVER", raising=False)
    else:
        monkeypatch.setenv("LIVESTUDIO_SERVER", env)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and "http://" in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["serve", "--port", "abc"], "argument --port: invalid int value: 'abc'"),
        (["members"], "the following arguments are required: project"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["serve", "--bogus"], "unrecognized arguments: --bogus (`livestudio COMMAND --help`"),
    ],
)
def test_a_wrong_argument_is_one_line_naming_the_help(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("livestudio: ") and said in err
    assert "--help` lists the options" in err and "usage:" not in err
