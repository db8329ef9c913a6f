"""Flattening of per-file nested params and metrics into column names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten_nested(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Join nested keys with ``/``: ``{"train": {"loss": 1}}`` → ``{"train/loss": 1}``."""
    flat: dict[str, Any] = {}
    _flatten_into(flat, tree, prefix)
    return flat


def _flatten_into(flat: dict[str, Any], tree: Mapping[str, Any], prefix: str) -> None:
    # Called for every post's metrics by the server: one dict filled in place.
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if value and isinstance(value, Mapping):
            _flatten_into(flat, value, name)
        else:
            flat[name] = value


def flatten_files(per_file: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Flatten ``{file: nested}`` into one dict of columns.

    A name is prefixed with its file (``params.yaml:lr``) only when two files would
    otherwise give the same column, so the usual single-file case stays short.
    """
    if len(per_file) == 1:  # the usual case: nothing can clash
        return flatten_nested(next(iter(per_file.values())))
    flat_per_file = {file: flatten_nested(tree) for file, tree in per_file.items()}
    seen: dict[str, int] = {}
    for flat in flat_per_file.values():
        for name in flat:
            seen[name] = seen.get(name, 0) + 1
    columns: dict[str, Any] = {}
    for file, flat in flat_per_file.items():
        for name, value in flat.items():
            columns[f"{file}:{name}" if seen[name] > 1 else name] = value
    return columns


def metrics_tree(metrics_files: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Turn the protocol's ``{file: {"data": {...}}}`` into ``{file: {...}}`` without ``step``.

    Files that carry an ``error`` instead of ``data`` are left out.
    """
    tree: dict[str, dict[str, Any]] = {}
    for file, content in metrics_files.items():
        data = content.get("data") if isinstance(content, Mapping) else None
        if isinstance(data, Mapping):
            tree[file] = {k: v for k, v in data.items() if k != "step"}
    return tree
