"""The table's state without Textual: highlights, filters, groups, compare marks."""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from shared.api import ExperimentRow
from tui import images, theme
from tui.format import SPARK_BLOCKS, ago, sparkline, time_ago, value_text
from tui.state import ProjectState, column_value, compare

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(
    i: int, sha: str = "a" * 40, status: str = "running", seconds: int = 0, **kw
) -> ExperimentRow:
    return ExperimentRow(
        id=i,
        baseline_sha=sha,
        name=kw.pop("name", f"exp-{i}"),
        status=status,
        client="dvclive",
        started_at=T0 + timedelta(seconds=i),
        updated_at=T0 + timedelta(seconds=seconds),
        **kw,
    )


def test_changed_cells_are_highlighted_then_expire() -> None:
    state = ProjectState(highlight_seconds=5)
    state.apply_row(row(1, metrics={"loss": 1.0}, step=0), now=100)
    assert not state.changed_at  # first sight is not a change
    change = state.apply_row(row(1, seconds=1, metrics={"loss": 0.5}, step=1), now=101)
    assert set(change.columns) >= {"m:loss", "step", "updated", "spark"}
    assert state.is_highlighted(1, "m:loss", 104)
    assert not state.is_highlighted(1, "m:loss", 106)
    # It fades back in stages (redrawn at each), then ends.
    assert state.highlight_stage(1, "m:loss", 102) == 0
    assert state.expire(102) == []
    assert state.highlight_stage(1, "m:loss", 104.2) == 1
    assert sorted(state.expire(104.2)) == [(1, "m:loss"), (1, "step")]
    assert state.expire(104.3) == []
    assert state.highlight_stage(1, "m:loss", 105.2) == 2
    assert sorted(state.expire(105.2)) == [(1, "m:loss"), (1, "step")]
    assert sorted(state.expire(106)) == [(1, "m:loss"), (1, "step")]
    assert list(state.history[1]) == [1.0, 0.5]


def test_stale_rows_never_overwrite_newer_ones() -> None:
    state = ProjectState()
    state.apply_row(row(1, seconds=10, step=5), now=0)
    state.apply_row(row(1, seconds=5, step=2), now=0)
    assert state.rows[1].step == 5


def test_groups_filters_sort_and_counter() -> None:
    state = ProjectState()
    state.apply_row(row(1, sha="a" * 40, metrics={"acc": 0.5}), now=0)
    state.apply_row(row(2, sha="b" * 40, status="completed", metrics={"acc": 0.9}), now=0)
    state.apply_row(row(3, sha="a" * 40, metrics={"acc": 0.7}, name="special"), now=0)
    assert state.groups() == [("a" * 40, [3, 1]), ("b" * 40, [2])]
    assert state.running == 2
    state.live_only = True
    assert [ids for _, ids in state.groups()] == [[3, 1]]
    state.live_only, state.name_filter = False, "spec"
    assert [ids for _, ids in state.groups()] == [[3]]
    state.name_filter = ""
    state.sort_by("m:acc")
    assert state.groups()[0][1] == [1, 3]
    state.sort_by("m:acc")
    assert state.groups()[0][1] == [3, 1]


def test_runs_without_a_value_sort_last_both_ways() -> None:
    state = ProjectState()
    for i, step in enumerate([5, None, 60], start=1):
        state.apply_row(row(i, step=step), now=0)
    state.sort_by("step")
    assert state.groups()[0][1] == [1, 3, 2]
    state.sort_by("step")
    assert state.groups()[0][1] == [3, 1, 2]  # the run just started (no step) was on top
    state = ProjectState()
    for i, acc in enumerate([0.5, None, 0.9, "nan"], start=1):
        state.apply_row(row(i, metrics={"acc": acc} if acc is not None else {}), now=0)
    state.sort_by("m:acc")
    assert state.groups()[0][1] == [1, 3, 4, 2]
    state.sort_by("m:acc")
    assert state.groups()[0][1] == [3, 1, 4, 2]  # highest first; NaN, then none, last


def test_names_sort_as_names_a_set_aside_run_after_its_new_one() -> None:
    state = ProjectState()
    for i, name in enumerate(["fixedx (1)", "fixedx", "alpha"], start=1):
        state.apply_row(row(i, name=name), now=0)
    state.sort_by("name")
    assert state.groups()[0][1] == [3, 2, 1]  # "fixedx (1)" sorted before "fixedx"


def test_compare_marks_differences_and_best_values() -> None:
    lines = {
        line.key: line
        for line in compare(
            [
                row(1, params={"lr": 0.1, "bs": 8}, metrics={"val/loss": 0.3, "acc": "nan"}),
                row(2, params={"lr": 0.2, "bs": 8}, metrics={"val/loss": 0.2, "acc": 0.8}),
                row(3, params={"bs": 8}, metrics={"f1": 0.5}),
            ]
        )
    }
    assert lines["param:lr"].differs and not lines["param:bs"].differs
    assert lines["metric:val/loss"].best == {1}  # lower is better for losses
    assert lines["metric:acc"].best == {1}  # beside a diverged run, the finite one
    assert lines["metric:f1"].best == set()  # one run has it: nothing to compare


def test_a_null_param_reads_null_not_blank_like_a_missing_one() -> None:
    rows = [row(1, params={"init": None}), row(2, params={})]
    line = next(line for line in compare(rows) if line.key == "param:init")
    assert [value_text(v) for v in line.values] == ["null", ""]
    assert line.differs  # null in one run's file, absent from the other's
    state = ProjectState()
    for r in rows:
        state.apply_row(r, now=100)
    assert [value_text(column_value(r, "p:init")) for r in rows] == ["null", ""]


def test_a_diverged_runs_infinity_is_never_the_best() -> None:
    rows = [
        row(1, metrics={"acc": 0.87, "val/loss": 0.36}),
        row(2, metrics={"acc": "inf", "val/loss": "-inf"}),
        row(3, metrics={"acc": 0.91, "val/loss": 0.41}),
    ]
    lines = {line.key: line for line in compare(rows)}
    assert lines["metric:acc"].best == {2} and lines["metric:val/loss"].best == {0}


def test_formatting_and_no_color_highlight(monkeypatch) -> None:
    assert [value_text(v) for v in (0.333333, "nan", 3, None, True)] == [
        "0.3333",
        "nan",
        "3",
        "",
        "true",
    ]
    assert ago(T0, T0 + timedelta(seconds=125)) == "2m"
    assert time_ago(T0, T0 + timedelta(seconds=125)) == "2m ago"
    assert time_ago(T0, T0 + timedelta(seconds=1)) == "now"  # not "now ago"
    assert sparkline([1, 2, 3, "nan"], 4) == "▁▅█·"
    # A converged loss: 30 values falling fast, then 10 of noise around 0.05. The whole
    # history's shape, not the tail's noise scaled up to full height.
    loss = [2.0 / (1 + i) for i in range(30)] + [0.05, 0.051, 0.049, 0.05, 0.052] * 2
    assert sparkline(loss, 10) == "█▃▂▂▁▁▁▁▁▁"
    assert sparkline([1, "nan", "nan", 3], 2) == "▁█"  # a run's NaNs do not hide its value
    assert sparkline(["nan"] * 4 + [1, 2], 3) == "··▄"  # one value: mid-height
    assert sparkline([*range(39), "nan"], 10)[-1] == "·"  # just diverged: shown at once
    assert theme.highlight().color is not None and theme.highlight().bold
    fading = [theme.highlight(stage) for stage in (0, 1, 2)]
    assert len({style.color for style in fading}) == 3 and not fading[2].bold
    monkeypatch.setenv("NO_COLOR", "1")
    style = theme.highlight()
    assert style.color is None and style.bold and style.reverse
    assert theme.highlight(2).bold and not theme.highlight(2).reverse  # still visible


def test_images_are_drawn_from_real_pngs_within_limits() -> None:
    import base64

    from tests.conftest import fixture_bodies

    image = next(
        plot["image"]
        for body in fixture_bodies("dvclive_nan_image")
        for plot in (body.get("plots") or {}).values()
        if "image" in plot
    )
    text = images.render_sync(base64.b64decode(image))
    assert text.plain.count("▀") == 32  # 8 columns x 4 rows of two pixels


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_png((20_000, 20_000)), "over the 25,000,000-pixel limit"),  # ~400 KB bomb
        (_png((64, 64))[:60], "damaged image"),  # truncated
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not an image"),  # corrupt chunks
        (b"GIF89a" + b"\xff" * 20, "not an image"),
        (b"<svg/>", "not an image"),
        (b"\0" * (images.MAX_IMAGE_BYTES + 1), "byte limit"),
    ],
)
def test_hostile_images_become_a_one_line_placeholder(data: bytes, reason: str) -> None:
    text = images.render_sync(data)
    assert text.plain.startswith("(image not drawn: ") and reason in text.plain
    assert "\n" not in text.plain


def test_a_12_kb_2000_square_png_is_drawn_small(tmp_path) -> None:
    data = _png((2000, 2000))
    assert len(data) < 20_000
    text = images.render_sync(data, max_cells=40, max_lines=12)
    # Scaled to 24 x 24 pixels (the aspect kept): 12 lines of 24 half-block cells.
    assert text.plain.count("\n") == 12 and text.plain.count("▀") == 24 * 12


def test_plot_view_smoothing_cursor_and_log_scale() -> None:
    from tui.plotting import SMOOTHING, PlotView, drawable, smooth, value_at

    assert smooth([1.0, 1.0, 1.0], 0.9) == [1.0, 1.0, 1.0]  # debiased: no pull towards 0
    smoothed = smooth([0.0, 10.0, 0.0, 10.0], 0.6)
    assert smoothed[0] == 0.0 and 0 < smoothed[-1] < 10 and smooth([3.0], 0.0) == [3.0]
    view = PlotView()
    for _ in range(10):
        view.smoother(True)
    assert view.weight == SMOOTHING[-1]
    view.smoother(False)
    assert view.weight == SMOOTHING[-2]
    view.move_cursor([0, 2, 5], 1)
    assert view.cursor == 5  # the first move goes to the latest step
    view.move_cursor([0, 2, 5], -1)
    view.move_cursor([0, 2, 5], -1)
    view.move_cursor([0, 2, 5], -1)
    assert view.cursor == 0
    points = [(0, 1.0), (2, -3.0), (5, "nan")]
    assert value_at(points, 4) == -3.0 and value_at(points, -1) is None
    assert drawable(points, log_scale=True) == ([0], [1.0])
    assert drawable(points, log_scale=False) == ([0, 2], [1.0, -3.0])


def test_help_lists_every_screen_with_keys_of_its_own() -> None:
    """`?` is "help with every key": each full screen with bindings has a section."""
    import inspect

    from textual.screen import ModalScreen, Screen

    import tui.screens
    from tui.screens import help as help_screen

    covered = {id(group) for _, groups in help_screen._sections() for group in groups}
    package = Path(tui.screens.__file__).parent
    missing = []
    for module_file in package.glob("*.py"):
        module = __import__(f"tui.screens.{module_file.stem}", fromlist=["*"])
        for _, cls in inspect.getmembers(module, inspect.isclass):
            own = cls.__dict__.get("BINDINGS")
            if (
                own
                and issubclass(cls, Screen)
                and not issubclass(cls, ModalScreen)
                and cls.__module__ == module.__name__
                and cls.__name__ not in ("HelpScreen", "LoginScreen")
                and id(own) not in covered
            ):
                missing.append(cls.__name__)
    assert missing == []


def test_nan_and_inf_are_marked_on_charts_not_dropped() -> None:
    from tui.plotting import nonfinite
    from tui.widgets.metric_chart import summary

    points = [(0, 0.3), (1, "nan"), (2, 0.1), (3, "inf"), (4, "-inf"), (5, float("nan"))]
    assert nonfinite(points) == [(1, "nan"), (3, "inf"), (4, "-inf"), (5, "nan")]
    assert summary(points).endswith("4 non-finite ✗")
    assert "non-finite" not in summary([(0, 1.0), (1, 2.0)])


def test_the_details_screen_shows_the_step_rate_while_the_run_goes_on() -> None:
    from shared.api import ExperimentDetail
    from tui.screens.details import _step_text

    def detail(status: str, rate: float | None) -> ExperimentDetail:
        base = row(1, status=status, step=31, steps_per_s=rate)
        return ExperimentDetail(**{f: getattr(base, f) for f in base.__struct_fields__})

    assert _step_text(detail("running", 1.4142), False) == "31  (1.41 steps/s)"
    assert _step_text(detail("running", None), False) == "31"
    assert _step_text(detail("completed", 1.4142), False) == "31"  # means nothing once ended
    assert _step_text(detail("running", 1.4142), True) == "31"  # stalled: steps long past


def test_the_trend_metric_moves_to_a_loss_until_the_user_picks_one() -> None:
    state = ProjectState()
    state.apply_row(row(1, metrics={"score": 0.9}), now=0)
    assert state.primary == "score"  # all there is
    state.apply_row(row(2, metrics={"train/loss": 0.5, "score": 0.8}), now=1)
    assert state.primary == "train/loss" and 1 not in state.history  # restarted on the loss
    state.apply_row(row(3, metrics={"val/loss": 0.6}), now=2)
    assert state.primary == "train/loss"  # a loss already: it stays
    assert state.cycle_primary() == "val/loss"
    assert state.cycle_primary() == "score"  # the user's choice
    state.apply_row(row(4, metrics={"test/loss": 0.7}), now=3)
    assert state.primary == "score"  # is kept
    # Text and list metrics draw no trend: m passes them over.
    state.apply_row(row(5, metrics={"aa_note": "warmup", "ab_list": [1, 2], "ac_nan": "nan"}), 4)
    seen = {state.cycle_primary() for _ in range(len(state.metric_names) + 1)}
    assert "aa_note" not in seen and "ab_list" not in seen and "ac_nan" in seen


@pytest.mark.parametrize("system", ["standard", "eight_bit"])
def test_a_changed_value_never_looks_like_a_worse_one_or_a_failure(
    system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On 16- and 256-colour terminals each highlight stage keeps a colour of its own."""
    from rich.color import ColorSystem

    monkeypatch.delenv("NO_COLOR", raising=False)
    downgrade = ColorSystem.STANDARD if system == "standard" else ColorSystem.EIGHT_BIT

    def shown(style) -> int | None:
        return style.color.downgrade(downgrade).number

    alarming = {shown(theme.WORSE), shown(theme.STATUS_STYLE["failed"]), shown(theme.BETTER)}
    for stage in range(3):
        assert shown(theme.highlight(stage)) not in alarming, stage


def test_a_long_line_is_thinned_to_its_lows_and_highs_for_drawing() -> None:
    from tui.plotting import thin

    xs = [float(i) for i in range(10_000)]
    ys = [float((i * 7919) % 1000) for i in range(10_000)]
    ys[4321] = -50.0  # a dip and a spike a plain stride would step over
    ys[8765] = 5000.0
    tx, ty = thin(xs, ys, 400)
    assert len(tx) <= 402 and tx == sorted(tx) and tx[-1] == xs[-1]
    assert min(ty) == -50.0 and max(ty) == 5000.0
    assert thin(xs[:50], ys[:50], 400) == (xs[:50], ys[:50])


def test_a_jpeg_of_too_many_scans_is_not_decoded_and_a_real_one_is() -> None:
    from shared.images import MAX_JPEG_SCANS, jpeg_scans
    from tests.conftest import progressive_jpeg

    real = progressive_jpeg()
    assert 1 < jpeg_scans(real) <= 12  # what libjpeg writes
    assert images.render_sync(real).plain.count("▀") > 0
    bomb = progressive_jpeg((2000, 2000), repeat_last_scan=MAX_JPEG_SCANS)
    text = images.render_sync(bomb)
    assert text.plain.startswith("(image not drawn: a JPEG of ")
    assert f"scans (at most {MAX_JPEG_SCANS} are decoded)" in text.plain


def test_series_names_are_asked_for_a_few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """100 names of up to 1,024 characters would not fit in one URL."""
    from tui import client

    monkeypatch.setattr(client, "NAMES_PER_URL", 8)
    assert client._batches(["abc", "defg", "h" * 10, "i"]) == [["abc", "defg"], ["h" * 10], ["i"]]
    assert client._batches([]) == []


def test_one_runs_made_up_names_cannot_take_the_columns_of_the_others() -> None:
    """Past MAX_TABLE_COLUMNS names, the columns are those most runs log; ties go to the
    older runs' names (a snapshot lists the newest first): one member's run of 200 made-up
    names took every column, and `m` could no longer reach anyone's loss."""
    from tui.state import MAX_TABLE_COLUMNS, metric_column, param_column

    junk = {f"z{i:03d}": 1.0 for i in range(MAX_TABLE_COLUMNS)}
    for order in ("newest first", "junk first"):
        state = ProjectState()
        rows = [
            row(9, metrics=junk, params={f"q{i:03d}": 1 for i in range(MAX_TABLE_COLUMNS)}),
            row(1, metrics={"loss": 1.0, "acc": 0.5}, params={"note": "a"}),
        ]
        if order == "junk first":  # posted before the real runs: only numbers decide
            rows = [row(0, metrics=junk), row(1, metrics={"loss": 1.0, "acc": 0.5})]
            rows += [row(i, metrics={"loss": 0.5, "acc": 0.6}) for i in (2, 3)]
        for r in rows:
            state.apply_row(r, now=1.0)
        assert state.rechoose and state.choose_columns()
        columns = state.columns
        assert metric_column("loss") in columns and metric_column("acc") in columns, order
        assert len([c for c in columns if c.startswith("m:")]) == MAX_TABLE_COLUMNS
        names = {("m", n) for r in rows for n in r.metrics} | {
            ("p", n) for r in rows for n in r.params
        }
        assert state.unlisted == len(names) - len([c for c in columns if c[:2] in ("m:", "p:")])
        if order == "newest first":
            assert param_column("note") in columns
    # A deleted run's names no longer count: the others' take the columns back.
    state = ProjectState()
    state.apply_row(row(1, metrics={"loss": 1.0, "acc": 0.5}), now=1.0)
    for i in (8, 9):  # two runs of the same made-up names outnumber one real run
        state.apply_row(row(i, metrics=junk), now=1.0)
    state.choose_columns()
    assert metric_column("acc") not in state.columns  # (the trend metric, loss, stays)
    state.remove(8)
    state.remove(9)
    assert state.rechoose and state.choose_columns()
    assert metric_column("acc") in state.columns
    # A deleted run's names that no other run logs go altogether: no empty columns left.
    state = ProjectState()
    state.apply_row(row(1, metrics={"loss": 1.0, "acc": 0.5}), now=1.0)
    state.apply_row(row(2, metrics={f"junk{i}": 1 for i in range(300)}), now=1.0)
    state.choose_columns()
    state.remove(2)
    state.choose_columns()
    assert [c for c in state.columns if c.startswith("m:")] == ["m:loss", "m:acc"]
    assert state.unlisted == 0
    # Until there are more names than columns, nothing is chosen: first seen, in order.
    state = ProjectState()
    state.apply_row(row(1, metrics={"b": 1, "a": 2}), now=1.0)
    assert not state.rechoose and state.columns[-2:] == ["m:b", "m:a"]


def test_the_trend_metric_is_the_loss_most_runs_log_until_one_is_picked() -> None:
    state = ProjectState()
    state.apply_row(row(9, metrics={"loss": 0.5, "acc": 0.1}), now=0)  # the newest, first
    for experiment_id in (1, 2, 3):
        state.apply_row(row(experiment_id, metrics={"train/loss": 0.3, "acc": 0.2}), now=0)
    assert state.primary == "loss"  # the first loss seen, row by row
    assert state.settle_primary() and state.primary == "train/loss"
    assert set(state.history) == {1, 2, 3}  # histories restart on it
    assert not state.settle_primary()
    state.cycle_primary()  # the user picks one (m): kept, whatever runs log
    picked = state.primary
    for experiment_id in (4, 5, 6, 7):
        state.apply_row(row(experiment_id, metrics={"loss": 0.3}), now=0)
    assert not state.settle_primary() and state.primary == picked


def test_without_a_loss_the_trend_metric_is_the_one_most_runs_log() -> None:
    state = ProjectState()
    state.apply_row(row(1, metrics={"score": 0.5}), now=0)
    for experiment_id in (2, 3):
        state.apply_row(row(experiment_id, metrics={"acc": 0.2}), now=0)
    assert state.settle_primary() and state.primary == "acc"


def test_the_trend_metric_past_the_columns_gets_a_column() -> None:
    from tui.state import MAX_TABLE_COLUMNS

    state = ProjectState()
    made_up = {f"m{i:03}": 1.0 for i in range(MAX_TABLE_COLUMNS)}
    state.apply_row(row(1, metrics={**made_up, "loss": 0.5}), now=0)  # the 201st name
    for experiment_id in (2, 3):
        state.apply_row(row(experiment_id, metrics={"train/loss": 0.3}), now=0)
    assert "train/loss" not in state.metric_names
    assert state.settle_primary() and state.primary == "train/loss"
    assert state.rechoose and state.choose_columns()
    assert "train/loss" in state.metric_names


def test_a_trend_shows_the_whole_run_watched_live_or_fetched_later() -> None:
    """Live it kept the last 40 values, while a TUI opened later fetched 40 points of the
    whole run: the same run's sparkline had two shapes (`█▂▁▁▁` and `▃█▂▆▇▁▄`)."""
    from tui.state import Trend

    loss = [2.0 / (1 + i) + 0.01 * (i % 7) for i in range(2000)]
    watched = Trend()
    for value in loss:
        watched.add(value)
    fetched = Trend(loss[::50], per_bucket=50)
    assert len(watched) <= 80 and len(fetched) == 40

    def alike(a: Trend, b: Trend) -> bool:  # (a point stands for its bucket's mean: ±1 block)
        levels = [[SPARK_BLOCKS.index(c) for c in sparkline(list(t), 10)] for t in (a, b)]
        return all(abs(x - y) <= 1 for x, y in zip(*levels, strict=True))

    assert sparkline(list(watched), 10).startswith("█▂▁") and alike(watched, fetched)
    # Fetched halfway through and watched from then on: the same shape again.
    joined = Trend(loss[:1000:25], per_bucket=25)
    for value in loss[1000:]:
        joined.add(value)
    assert alike(joined, watched)
    # A run that just diverged shows it at once, and a bucket of NaNs only is a gap.
    watched.add("nan")
    assert sparkline(list(watched), 10)[-1] == "·"
    gaps = Trend([1.0, "nan", 3.0])
    assert sparkline(list(gaps), 3) == "▁·█"


def test_a_middle_cut_keeps_both_ends_within_its_width() -> None:
    from tui.format import middle_cut

    name = "val/very_long_metric_name_component_end"
    assert middle_cut(name, 100) == name
    assert middle_cut(name, 12) == "val/v…nt_end" and len(middle_cut(name, 12)) == 12
    assert [middle_cut(name, w) for w in (2, 1, 0, -3)] == ["…d", "…", "", ""]


def test_cuts_count_terminal_cells_not_characters() -> None:
    from rich.cells import cell_len

    from tui.format import head_cut, middle_cut, tail_cut

    # Each of these characters takes two cells: cut by characters, a CJK name took twice
    # its column and ran into the next one.
    name = "验证集/每个类别的准确率_最后一个"
    for width in range(1, 40):
        for cut in (head_cut, middle_cut, tail_cut):
            assert cell_len(cut(name, width)) <= width, (cut.__name__, width)
    assert middle_cut(name, 11) == "验证…后一个"  # 4 + 1 + 6 cells
    assert head_cut(name, 7) == "验证集…" and tail_cut(name, 7) == "…后一个"
    assert head_cut("abc", 3) == "abc" and middle_cut(name, 40) == name


def test_shell_lines_fold_between_words_never_inside_one() -> None:
    from tui.format import shell_fold

    token = "lst_" + "x" * 60
    assert shell_fold(f"export DVC_STUDIO_TOKEN={token}", 40) == [
        "export \\",
        f"DVC_STUDIO_TOKEN={token}",  # too wide: left whole, for the widget to cut in sight
    ]
    assert shell_fold("a b c d e f", 6) == ["a b \\", "c d \\", "e f"]
