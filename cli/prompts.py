"""Passwords read from a terminal or from stdin, as text every part of livestudio can hash
and send."""

from __future__ import annotations

import getpass
import sys

from cli.admin import CliError

NO_TERMINAL = "No terminal to ask for a password; pass it with --password-stdin."


def password_from_stdin() -> str:
    """The first line of stdin, without its line ending."""
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:  # stdin decoded strictly (a UTF-8 locale)
        raise _not_text() from None
    password = line.rstrip("\r\n")
    if not password:  # (a login said "wrong username or password")
        raise CliError(
            "No password on stdin: --password-stdin reads its first line"
            " (printf '%s\\n' \"$PASSWORD\" | livestudio …)."
        )
    return utf8(password)


def password_from_terminal(prompt: str = "Password: ") -> str:
    """A password typed at the terminal, unechoed."""
    if not sys.stdin.isatty():
        raise CliError(NO_TERMINAL)
    return utf8(getpass.getpass(prompt))


def utf8(password: str) -> str:
    """Refuse a password that is no text: bytes of another encoding (a Latin-1 terminal, a
    file) reach Python as surrogates, which neither argon2 nor JSON can take."""
    try:
        password.encode()
    except UnicodeEncodeError:
        raise _not_text() from None
    return password


def _not_text() -> CliError:
    return CliError(
        "The password is not UTF-8 text (another encoding's bytes?); type it in a UTF-8"
        " terminal, or convert the file (iconv -t UTF-8)."
    )
