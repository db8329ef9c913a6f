"""``dvc exp push`` notifications: which experiments reached the Git remote (SPEC §5.5)."""

from __future__ import annotations

from collections.abc import Callable

from backend.db import repository
from backend.db.writer import WriteContext, Writer
from backend.services import events
from backend.services.errors import InvalidInput
from backend.services.ingest import authorize, token_hash
from shared.repo_url import InvalidRepoUrl, repo_key

EXP_REF_PREFIX = "refs/exps/"


def parse_exp_ref(ref: str) -> tuple[str, str] | None:
    """``refs/exps/b0/0e71…/name`` → (baseline sha, experiment name)."""
    if not ref.startswith(EXP_REF_PREFIX):
        return None
    parts = ref[len(EXP_REF_PREFIX) :].split("/")
    if len(parts) < 3 or len(parts[0]) != 2 or len(parts[0] + parts[1]) != 40:
        return None
    return (parts[0] + parts[1]).lower(), "/".join(parts[2:])


REFS_PER_JOB = 200
"""Refs marked per transaction: a push of 10,000 experiments in one held every request
for over a second."""


async def notify(
    writer: Writer, token: str, repo_url: str, pushed: list[str], removed: list[str], now: float
) -> dict[str, int]:
    """Mark the poster's pushed (or no longer pushed) experiments, a part at a time."""
    counts = {"pushed": 0, "removed": 0}
    parts: list[tuple[list[str], list[str]]] = [
        (pushed[i : i + REFS_PER_JOB], []) for i in range(0, len(pushed), REFS_PER_JOB)
    ]
    parts += [([], removed[i : i + REFS_PER_JOB]) for i in range(0, len(removed), REFS_PER_JOB)]
    for part_pushed, part_removed in parts or [([], [])]:  # one job at least: the token
        done = await writer.submit(notify_job(token, repo_url, part_pushed, part_removed, now))
        counts = {kind: counts[kind] + done[kind] for kind in counts}
    return counts


def notify_job(
    token: str, repo_url: str, pushed: list[str], removed: list[str], now: float
) -> Callable[[WriteContext], dict[str, int]]:
    """Mark the poster's experiments as pushed (or no longer pushed)."""
    try:
        key = repo_key(repo_url)
    except InvalidRepoUrl as exc:
        raise InvalidInput(f"{exc} (at `$.repo_url`).") from None
    hashed = token_hash(token)

    def job(ctx: WriteContext) -> dict[str, int]:
        principal = authorize(ctx, hashed, now)
        counts = {"pushed": 0, "removed": 0}
        for kind, refs, value in (("pushed", pushed, True), ("removed", removed, False)):
            for ref in refs:
                identity = parse_exp_ref(ref)
                if identity is None:
                    continue
                record = repository.find_experiment(ctx.conn, principal.user_id, key, *identity)
                if record is None or record.pushed == value:
                    continue
                record.pushed = value
                repository.update_experiment(ctx.conn, record)
                events.experiment_changed(ctx, record, counts_changed=False)
                counts[kind] += 1
        return counts

    return job
