"""The project table's state as plain Python: rows, columns, highlights, filters, selection.

No Textual here: the screens render what this decides, and tests check it directly.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.api import ExperimentRow
from shared.values import parse_number
from tui.format import lower_is_better, param_value, sort_key
from tui.theme import FADE

FIXED_COLUMNS = ("sel", "name", "status", "step", "rate", "updated", "spark")
DELTA = "delta"
"""The difference to the baseline, shown after the fixed columns while one is pinned."""
HISTORY = 40
"""Buckets a trend keeps (``Trend``): the sparkline averages them into its width."""
MAX_TABLE_COLUMNS = 200
"""Metrics (and, apart, params) the table makes columns of, the first seen: a run may send
100,000 names, and a column each froze every member's table."""
MAX_LISTED = 500
"""Params (and, apart, metrics) of a run that details and compare list: a run of 40,000
took 20 s to open in details and a minute a key press (the API has every one)."""


def listed(values: dict[str, Any]) -> tuple[list[tuple[str, Any]], int]:
    """The first ``MAX_LISTED`` entries, and how many more there are."""
    if len(values) <= MAX_LISTED:
        return list(values.items()), 0
    return list(itertools.islice(values.items(), MAX_LISTED)), len(values) - MAX_LISTED


def metric_column(name: str) -> str:
    """Column key of a metric."""
    return f"m:{name}"


def param_column(name: str) -> str:
    """Column key of a param."""
    return f"p:{name}"


def column_value(row: ExperimentRow, column: str) -> Any:
    """The raw value a column shows for a row."""
    if column.startswith("m:"):
        return row.metrics.get(column[2:])
    if column.startswith("p:"):
        return param_value(row.params, column[2:])
    if column == "updated":
        return row.updated_at.timestamp()
    if column == "name":
        return (row.name, row.pushed)
    if column == "rate":  # a rate only means something while the run goes on
        return row.steps_per_s if row.status == "running" else None
    if column == DELTA:
        return None  # depends on the baseline; ProjectState.delta computes it
    return getattr(row, column, None)


@dataclass
class RowChange:
    """What one update did to the table."""

    experiment_id: int
    new: bool = False
    columns: list[str] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)


class ProjectState:
    """Experiments of one project and how the table shows them."""

    def __init__(self, highlight_seconds: float = 5.0) -> None:
        self.highlight_seconds = highlight_seconds
        self.rows: dict[int, ExperimentRow] = {}
        self.metric_names: list[str] = []
        self.param_names: list[str] = []
        self._runs_with: dict[str, Counter[str]] = {"metrics": Counter(), "params": Counter()}
        """How many runs log each metric and param name: past ``MAX_TABLE_COLUMNS`` names,
        the columns are those most runs log (one run's 200 made-up names took them all)."""
        self._seen: dict[str, dict[str, int]] = {"metrics": {}, "params": {}}
        """Every name in the order first seen (the columns keep that order); looked up
        rather than the lists: a 10,000-row snapshot with 100 metrics spent ~1 s scanning
        them. The column list is kept until they grow (``columns``)."""
        self._next_seen = 0
        self._oldest: dict[str, dict[str, int]] = {"metrics": {}, "params": {}}
        """The oldest run (lowest id) logging each name: ties go to older runs' names (a
        snapshot lists the newest first, and a new run's made-up names came first)."""
        self.rechoose = False
        """New names came past the columns' limit: ``choose_columns`` may change them."""
        self._columns: tuple[tuple[int, int, bool], list[str]] = ((-1, -1, False), [])
        self.changed_at: dict[tuple[int, str], float] = {}
        self._faded: dict[tuple[int, str], int] = {}
        """The fade stage each highlighted cell was last drawn at (see ``expire``)."""
        self.history: dict[int, Trend] = {}
        self.primary: str | None = None
        self.primary_chosen = False
        """The user picked the trend metric (m): it no longer follows the metrics seen."""
        self.selection: set[int] = set()
        self.folded: set[str] = set()
        """Baseline commits whose group shows only its header."""
        self.live_only = False
        self.name_filter = ""
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.baseline_id: int | None = None
        """The experiment the user compares the others against (kept on the server)."""
        self._baseline_steps: list[int] = []
        self._baseline_values: list[Any] = []
        self.flipped: set[str] = set()
        """Metrics whose better direction the user flipped from the name's guess (``M``)."""

    # ------------------------------------------------------------ columns

    @property
    def columns(self) -> list[str]:
        """Every column key, in display order (a new list: callers may extend it)."""
        shape = (len(self.metric_names), len(self.param_names), self.baseline_id is not None)
        known, columns = self._columns
        if shape != known:
            columns = [
                *FIXED_COLUMNS,
                *((DELTA,) if self.baseline_id is not None else ()),
                *(metric_column(n) for n in self.metric_names),
                *(param_column(n) for n in self.param_names),
            ]
            self._columns = (shape, columns)
        return list(columns)

    @property
    def unlisted(self) -> int:
        """Metric and param names seen that are not columns (past ``MAX_TABLE_COLUMNS``)."""
        return (
            len(self._seen["metrics"])
            - len(self.metric_names)
            + len(self._seen["params"])
            - len(self.param_names)
        )

    def choose_columns(self) -> bool:
        """Past ``MAX_TABLE_COLUMNS`` names of a kind, make columns of those most runs log
        (the trend metric always; ties: the first seen), in the order first seen. True if
        the columns changed (the table lays out again)."""
        self.rechoose = False
        changed = False
        for kind, names in (("metrics", self.metric_names), ("params", self.param_names)):
            seen = self._seen[kind]
            if len(seen) <= MAX_TABLE_COLUMNS:
                chosen = list(seen)  # every name, as first seen
            else:
                runs, oldest = self._runs_with[kind], self._oldest[kind]
                keep = self.primary if kind == "metrics" else None
                best = heapq.nsmallest(
                    MAX_TABLE_COLUMNS,
                    seen,
                    key=lambda n: (n != keep, -runs[n], oldest.get(n, 1 << 62), seen[n]),
                )
                chosen = sorted(best, key=seen.__getitem__)
            if chosen != names:
                names[:] = chosen
                changed = True
        if changed:
            self._columns = ((-1, -1, False), [])  # same counts, other names
        return changed

    def _count_runs(self, old: ExperimentRow | None, row: ExperimentRow | None) -> None:
        """A row came, changed or went: the runs each name is logged by."""
        for kind in ("metrics", "params"):
            before = getattr(old, kind).keys() if old is not None else {}.keys()
            after = getattr(row, kind).keys() if row is not None else {}.keys()
            if before == after:
                continue
            runs, oldest, new = self._runs_with[kind], self._oldest[kind], after - before
            runs.update(new)
            runs.subtract(before - after)
            self._forget_unlogged(kind, [n for n in before - after if runs[n] <= 0])
            experiment_id = (row or old).id  # type: ignore[union-attr]
            for name in new:
                if oldest.get(name, experiment_id) >= experiment_id:
                    oldest[name] = experiment_id
            if len(self._seen[kind]) > MAX_TABLE_COLUMNS:
                self.rechoose = True  # more runs log some names: they may deserve columns

    def _forget_unlogged(self, kind: str, names: list[str]) -> None:
        """Names no run logs any more (its runs deleted): no column, nothing to count."""
        if not names:
            return
        columns = self.metric_names if kind == "metrics" else self.param_names
        gone = set(names)
        for name in gone:
            self._seen[kind].pop(name, None)
            self._oldest[kind].pop(name, None)
            del self._runs_with[kind][name]
        columns[:] = [n for n in columns if n not in gone]
        self._columns = ((-1, -1, False), [])
        self.rechoose = True  # room for a name that had none

    def _learn_columns(self, row: ExperimentRow) -> list[str]:
        added: list[str] = []
        metrics, params = self._seen["metrics"], self._seen["params"]
        if row.metrics.keys() <= metrics.keys() and row.params.keys() <= params.keys():
            return added
        for kind, names, seen, column_of in (
            ("metrics", self.metric_names, metrics, metric_column),
            ("params", self.param_names, params, param_column),
        ):
            for name in getattr(row, kind):
                if name in seen:
                    continue
                seen[name] = self._next_seen
                self._next_seen += 1
                if len(names) < MAX_TABLE_COLUMNS:
                    names.append(name)
                    added.append(column_of(name))
                else:
                    self.rechoose = True
        if self.metric_names and not self.primary_chosen:
            # Until the user picks one (m), a loss once one arrives: the first run seen may
            # log only a score, and the trend column stayed on it for good.
            best = next((n for n in self.metric_names if "loss" in n), self.metric_names[0])
            if self.primary is None:
                self.primary = best
            elif best != self.primary and "loss" not in self.primary:
                self.primary = best
                self.history.clear()
        return added

    def settle_primary(self) -> bool:
        """Once a snapshot's rows are all in, and until the user picks one (m): the trend
        metric is the loss most runs log (else the metric most runs log), ties going to
        the first seen. Chosen row by row, it was the first loss of whichever run came
        first: one run logging `loss` left every `train/loss` run's sparkline empty.
        True if it changed (histories restart)."""
        runs, seen = self._runs_with["metrics"], self._seen["metrics"]
        if self.primary_chosen or not seen:
            return False
        # Among every name seen, columns or not: the column choice then keeps this one.
        losses = [n for n in seen if "loss" in n]
        best = min(losses or seen, key=lambda n: (-runs[n], seen[n]))
        if best == self.primary:
            return False
        self.primary = best
        if best not in self.metric_names:
            self.rechoose = True  # the trend metric always has its column
        self.history.clear()
        for experiment_id, row in self.rows.items():
            self._remember(experiment_id, row)
        return True

    @property
    def known_metrics(self) -> frozenset[str]:
        """Every metric name seen, columns or not."""
        return frozenset(self._seen["metrics"])

    def cycle_primary(self) -> str | None:
        """Choose the next metric for the sparkline column; histories restart."""
        # Text and list metrics draw no trend: passed over (unless there is nothing else).
        numeric = [
            name
            for name in self.metric_names
            if any(parse_number(row.metrics.get(name)) is not None for row in self.rows.values())
        ]
        names = numeric or self.metric_names
        if not names:
            return None
        self.primary_chosen = True
        index = names.index(self.primary) if self.primary in names else -1
        self.primary = names[(index + 1) % len(names)]
        self.history.clear()
        for experiment_id, row in self.rows.items():
            self._remember(experiment_id, row)
        return self.primary

    # ------------------------------------------------------------ baseline

    def set_baseline_points(self, points: list[tuple[int, Any]]) -> None:
        """The baseline's series of the trend metric (replaces what was held)."""
        ordered = sorted(points, key=lambda p: p[0])
        self._baseline_steps = [step for step, _ in ordered]
        self._baseline_values = [value for _, value in ordered]

    def add_baseline_points(self, points: list[tuple[int, Any]]) -> None:
        """New rows of the baseline's trend series (from the stream)."""
        for step, value in points:
            index = bisect.bisect_left(self._baseline_steps, step)
            if index < len(self._baseline_steps) and self._baseline_steps[index] == step:
                self._baseline_values[index] = value
            else:
                self._baseline_steps.insert(index, step)
                self._baseline_values.insert(index, value)

    def baseline_at(self, step: int) -> float | None:
        """The baseline's trend value at ``step``, or at its last step before it.

        Runs log at different rates: a run at step 7 is compared with the baseline's value
        at step 7 when it logged one, else the latest it had logged by then.
        """
        index = bisect.bisect_right(self._baseline_steps, step) - 1
        if index < 0:
            return None
        return parse_number(self._baseline_values[index])

    def lower_better(self, metric: str) -> bool:
        """Whether smaller values of ``metric`` are better (the name's guess, or flipped)."""
        return lower_is_better(metric) != (metric in self.flipped)

    def flip_direction(self) -> bool | None:
        """Flip the trend metric's better direction; returns whether lower is now better."""
        if self.primary is None:
            return None
        self.flipped ^= {self.primary}
        return self.lower_better(self.primary)

    def delta(self, row: ExperimentRow) -> float | None:
        """The row's trend value minus the baseline's at the same step."""
        if self.baseline_id is None or self.primary is None or row.id == self.baseline_id:
            return None
        value = parse_number(row.metrics.get(self.primary))
        if value is None or row.step is None or not math.isfinite(value):
            return None
        base = self.baseline_at(row.step)
        if base is None or not math.isfinite(base):
            return None
        return value - base

    def nonfinite_trend(self, row: ExperimentRow) -> float | None:
        """The row's trend value when it is NaN or infinite and a baseline is pinned (its
        difference to the baseline is no number), else None."""
        if self.baseline_id is None or self.primary is None or row.id == self.baseline_id:
            return None
        value = parse_number(row.metrics.get(self.primary))
        return value if value is not None and not math.isfinite(value) else None

    def is_better(self, delta: float) -> bool:
        """Whether a difference to the baseline is an improvement for the trend metric."""
        return delta < 0 if self.lower_better(self.primary or "") else delta > 0

    # ------------------------------------------------------------ updates

    def apply_row(self, row: ExperimentRow, now: float, highlight: bool = True) -> RowChange:
        """Take a full row (from the stream or a snapshot); older rows than held are ignored."""
        old = self.rows.get(row.id)
        change = RowChange(row.id, new=old is None, new_columns=self._learn_columns(row))
        if old is not None and row.updated_at < old.updated_at:
            return change
        self._count_runs(old, row)
        self.rows[row.id] = row
        if old is None:
            change.columns = self.columns
        else:
            change.columns = [
                c for c in self.columns if column_value(old, c) != column_value(row, c)
            ]
            if highlight:
                for column in change.columns:
                    if column.startswith(("m:", "p:")) or column in ("status", "step"):
                        self.changed_at[(row.id, column)] = now
                        self._faded.pop((row.id, column), None)
        if old is None or (
            self.primary and row.metrics.get(self.primary) != old.metrics.get(self.primary)
        ):
            self._remember(row.id, row)
            if "spark" not in change.columns:
                change.columns.append("spark")
            if DELTA not in change.columns:
                change.columns.append(DELTA)
        elif "step" in change.columns:
            change.columns.append(DELTA)
        return change

    def _remember(self, experiment_id: int, row: ExperimentRow) -> None:
        if self.primary is None or self.primary not in row.metrics:
            return
        self.history.setdefault(experiment_id, Trend()).add(row.metrics[self.primary])

    def seed_history(self, experiment_id: int, points: list[tuple[int, Any]]) -> None:
        """Fill a sparkline from fetched series points (downsampled: each stands for its
        share of the run's steps, and so does each bucket of values that come later)."""
        steps = points[-1][0] - points[0][0] + 1 if points else 1
        per_bucket = max(1, round(steps / max(1, len(points))))
        self.history[experiment_id] = Trend([v for _, v in points], per_bucket)

    def remove(self, experiment_id: int) -> None:
        """Forget a deleted experiment."""
        self._count_runs(self.rows.pop(experiment_id, None), None)
        self.history.pop(experiment_id, None)
        self.selection.discard(experiment_id)
        for key in [k for k in self.changed_at if k[0] == experiment_id]:
            del self.changed_at[key]

    def is_highlighted(self, experiment_id: int, column: str, now: float) -> bool:
        """Whether the cell changed in the last ``highlight_seconds``."""
        return self.highlight_stage(experiment_id, column, now) is not None

    def highlight_stage(self, experiment_id: int, column: str, now: float) -> int | None:
        """How far the cell's highlight has faded (0 fresh, 1, 2), or None when it is over."""
        at = self.changed_at.get((experiment_id, column))
        return None if at is None else self._stage(now - at)

    def _stage(self, age: float) -> int | None:
        if age >= self.highlight_seconds:
            return None
        part = age / self.highlight_seconds
        return sum(1 for edge in FADE if part >= edge)

    def expire(self, now: float) -> list[tuple[int, str]]:
        """Fade highlights and drop those that ran out; returns the cells to redraw."""
        redraw = []
        for key, at in list(self.changed_at.items()):
            stage = self._stage(now - at)
            if stage is None:
                del self.changed_at[key]
                self._faded.pop(key, None)
                redraw.append(key)
            elif stage != self._faded.get(key, 0):
                self._faded[key] = stage
                redraw.append(key)
        return redraw

    # ------------------------------------------------------------ view

    @property
    def running(self) -> int:
        """The Live counter: how many experiments are running."""
        return sum(1 for r in self.rows.values() if r.status == "running")

    def is_visible(self, row: ExperimentRow) -> bool:
        """Whether the filters let the row through."""
        if self.live_only and row.status != "running":
            return False
        return not self.name_filter or self.name_filter.lower() in row.name.lower()

    def toggle_selection(self, experiment_id: int) -> bool:
        """Select or unselect; returns whether it is now selected."""
        if experiment_id in self.selection:
            self.selection.discard(experiment_id)
            return False
        self.selection.add(experiment_id)
        return True

    def toggle_fold(self, sha: str) -> bool:
        """Fold or unfold a commit's group; returns whether it is now folded."""
        if sha in self.folded:
            self.folded.discard(sha)
            return False
        self.folded.add(sha)
        return True

    def groups(self) -> list[tuple[str, list[int]]]:
        """Visible experiments grouped by baseline commit, newest group first."""
        grouped: dict[str, list[ExperimentRow]] = {}
        for row in self.rows.values():
            if self.is_visible(row):
                grouped.setdefault(row.baseline_sha, []).append(row)
        ordered = sorted(
            grouped.items(), key=lambda item: max(r.started_at for r in item[1]), reverse=True
        )
        result = []
        for sha, rows in ordered:
            if self.sort_column is None:
                rows.sort(key=lambda r: (r.started_at, r.id), reverse=True)
            else:
                column = self.sort_column
                # (the name column's value is (name, pushed): sorted by the name alone,
                # "x (1)" came before "x", the tuple's quote after the space)
                keys = {
                    r.id: sort_key(r.name if column == "name" else column_value(r, column))
                    for r in rows
                }
                rows.sort(key=lambda r: keys[r.id], reverse=self.sort_reverse)
                if self.sort_reverse:
                    # Only the values flip: runs with no value (a run just started has
                    # no step) stay last, after NaN and text, not above the highest.
                    rows.sort(key=lambda r: keys[r.id][0])
            result.append((sha, [r.id for r in rows]))
        return result

    def sort_by(self, column: str) -> None:
        """Sort by a column; the same column again flips the order."""
        if self.sort_column == column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False


@dataclass
class CompareLine:
    """One row of the compare view: a param or metric across the experiments."""

    kind: str
    name: str
    values: list[Any]
    differs: bool
    best: set[int] = field(default_factory=set)

    @property
    def key(self) -> str:
        """Row key in the compare table."""
        return f"{self.kind}:{self.name}"


def _not_listed(rows: list[ExperimentRow], kind: str, names: list[str]) -> list[CompareLine]:
    """How many of each run's ``kind`` are past ``MAX_LISTED`` (a line only if any are)."""
    shown = set(names)
    counts = [sum(name not in shown for name in getattr(row, kind)) for row in rows]
    if not any(counts):
        return []
    return [CompareLine("info", f"{kind} not listed (too many)", [f"{n:,}" for n in counts], False)]


def compare(
    rows: list[ExperimentRow], lower_better: Callable[[str], bool] = lower_is_better
) -> list[CompareLine]:
    """Params (marking those that differ) then metrics (marking the best value of each,
    the lowest where ``lower_better(metric)``)."""

    lines = [
        CompareLine("info", "status", [r.status for r in rows], len({r.status for r in rows}) > 1),
        CompareLine("info", "step", [r.step for r in rows], len({r.step for r in rows}) > 1),
    ]
    params = sorted({name for r in rows for name, _ in listed(r.params)[0]})
    for name in params:
        values = [param_value(r.params, name) for r in rows]
        lines.append(CompareLine("param", name, values, len({repr(v) for v in values}) > 1))
    lines.extend(_not_listed(rows, "params", params))
    metrics = sorted({name for r in rows for name, _ in listed(r.metrics)[0]})
    for name in metrics:
        values = [r.metrics.get(name) for r in rows]
        numbers = [parse_number(v) for v in values]
        # A diverged run's inf (or NaN) is never the best: only finite values compete, and
        # beside a diverged run the one finite value is the best.
        usable = [(n, i) for i, n in enumerate(numbers) if n is not None and math.isfinite(n)]
        best: set[int] = set()
        if usable and sum(n is not None for n in numbers) > 1:
            target = min(usable)[0] if lower_better(name) else max(usable)[0]
            best = {i for n, i in usable if n == target}
        lines.append(CompareLine("metric", name, values, len({repr(v) for v in values}) > 1, best))
    lines.extend(_not_listed(rows, "metrics", metrics))
    return lines


class Trend:
    """A run's values of the trend metric over its whole life, in at most ``2 * HISTORY``
    equal buckets (each the mean of its values), halved in number whenever full.

    It held the last 40 values instead, while a TUI opened later seeded it with 40 points
    of the whole run: one run's sparkline had two unrelated shapes on two screens.
    """

    def __init__(self, values: Sequence[Any] = (), per_bucket: int = 1) -> None:
        self.per_bucket = per_bucket
        """How many values each bucket stands for."""
        self._sums: list[float] = []
        self._counts: list[int] = []
        """Finite values in each bucket (0: none, it shows as ``·``)."""
        self._filled = 0
        """Values the newest bucket has taken."""
        self.last: Any = None
        """The newest value as it came: a run that just diverged shows it at once."""
        for value in values:
            self._put(value, self.per_bucket)

    def add(self, value: Any) -> None:
        """One more value of the run."""
        self._put(value, 1)

    def _put(self, value: Any, weight: int) -> None:
        self.last = value
        if not self._sums or self._filled >= self.per_bucket:
            if len(self._sums) >= 2 * HISTORY:
                self._halve()
            self._sums.append(0.0)
            self._counts.append(0)
            self._filled = 0
        self._filled += weight
        number = parse_number(value)
        if number is not None and math.isfinite(number):
            self._sums[-1] += number
            self._counts[-1] += 1

    def _halve(self) -> None:
        pairs = range(0, len(self._sums) - 1, 2)
        self._sums = [self._sums[i] + self._sums[i + 1] for i in pairs]
        self._counts = [self._counts[i] + self._counts[i + 1] for i in pairs]
        self._filled = self.per_bucket * 2
        self.per_bucket *= 2

    def __len__(self) -> int:
        return len(self._sums)

    def __iter__(self) -> Iterator[Any]:
        """Each bucket's mean (``nan`` for one without finite values), the newest value as
        it came when it is not finite."""
        means: list[Any] = [
            total / count if count else math.nan
            for total, count in zip(self._sums, self._counts, strict=True)
        ]
        newest = parse_number(self.last)
        if means and (newest is None or not math.isfinite(newest)):
            means[-1] = self.last
        return iter(means)
