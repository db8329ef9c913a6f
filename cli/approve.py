"""``livestudio approve CODE``: approve a device login (``dvc studio login``) from a shell."""

from __future__ import annotations

import httpx

from cli.admin import CliError
from tui.settings import TuiSettings


def approve(code: str, server: str | None) -> str:
    """Approve the code with the stored session; returns the new token's name."""
    settings = TuiSettings.from_env(server=server)
    session = settings.load_session()
    if session is None or session.server != settings.server:
        raise CliError(f"Log in to {settings.server} first with `livestudio login`.")
    try:
        response = httpx.post(
            f"{settings.server}/api/device-login/approve",
            json={"user_code": code},
            headers={"Authorization": f"Bearer {session.token}"},
            timeout=15,
        )
    except httpx.HTTPError as exc:
        raise CliError(f"Cannot reach {settings.server}: {exc}.") from None
    if response.status_code == 401:
        raise CliError("Your session has expired; log in again with `livestudio login`.")
    if response.status_code != 200:
        try:
            detail = str(response.json()["detail"])
        except (ValueError, KeyError):
            detail = f"The server answered {response.status_code}"
        raise CliError(detail.rstrip(".") + ".")
    return str(response.json()["token_name"])
