"""The logged-in user's profile: tokens and password."""

from __future__ import annotations

import asyncio

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from backend.api.deps import SESSION_ONLY, BackendDep, UserDep
from backend.db import repository
from backend.services import accounts, ssh_keys
from backend.services.errors import InvalidInput
from shared.api import NewToken, PasswordChange, SshKeyAdd, SshKeyInfo, UserInfo


class UserController(Controller):
    """``/api/user``: profile token, client tokens, password."""

    path = "/api/user"
    dependencies = SESSION_ONLY

    @get()
    async def me(self, backend: BackendDep, user: UserDep) -> UserInfo:
        """The user with their profile token metadata and client tokens."""
        tokens = await repository.user_tokens(backend.reader, user.user_id)
        profile = next((t for t in tokens if t.kind == "profile"), None)
        return UserInfo(
            username=user.username,
            is_admin=user.is_admin,
            profile_token=profile,
            client_tokens=[t for t in tokens if t.kind == "client"],
        )

    @post("/token", status_code=200)
    async def generate_token(self, backend: BackendDep, user: UserDep) -> NewToken:
        """Generate the profile token, or regenerate it (the old one stops working at once)."""
        return await backend.writer.submit(
            accounts.profile_token_job(user.user_id, user.session_id)
        )

    @delete("/token")
    async def delete_token(self, backend: BackendDep, user: UserDep) -> None:
        """Delete the profile token."""
        await backend.writer.submit(accounts.delete_profile_token_job(user.user_id))

    @delete("/tokens/{token_id:int}")
    async def delete_client_token(
        self, token_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> None:
        """Revoke one client token (from device login)."""
        await backend.writer.submit(accounts.delete_client_token_job(user.user_id, token_id))

    @get("/keys")
    async def ssh_keys(self, backend: BackendDep, user: UserDep) -> list[SshKeyInfo]:
        """The public keys that log this user in over SSH."""
        return await repository.ssh_keys_of(backend.reader, user.user_id)

    @post("/keys", status_code=201)
    async def add_ssh_key(
        self, data: JSONBody[SshKeyAdd], backend: BackendDep, user: UserDep
    ) -> SshKeyInfo:
        """Add an OpenSSH public key (one line of a .pub file)."""
        return await backend.writer.submit(
            ssh_keys.add_key_job(user.user_id, data.public_key, session_id=user.session_id)
        )

    @delete("/keys/{key_id:int}")
    async def remove_ssh_key(
        self, key_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> None:
        """Remove a key: it no longer logs in."""
        await backend.writer.submit(ssh_keys.remove_key_by_id_job(user.user_id, key_id))

    @post("/password", status_code=204)
    async def change_password(
        self, data: JSONBody[PasswordChange], backend: BackendDep, user: UserDep
    ) -> None:
        """Change the password; other sessions end; ``reset_tokens`` drops every token too."""
        # Guessing the current password with a stolen session is throttled like logins,
        # per login (``password_change_key``).
        key = accounts.password_change_key(user.session_id, user.user_id)
        accounts.admit_password_change_try(backend.logins, user.username, key, backend.clock())
        stored = await repository.user_by_id(backend.reader, user.user_id)
        if stored is None or not await asyncio.to_thread(
            accounts.password_matches, stored.password_hash, data.current_password
        ):
            raise InvalidInput("The current password is wrong; nothing was changed.")
        backend.logins.succeeded(user.username, key, backend.clock(), known=False)
        accounts.check_password(data.new_password)
        new_hash = await asyncio.to_thread(accounts.hash_password, data.new_password)
        await backend.writer.submit(accounts.change_password_job(user, new_hash, data.reset_tokens))
