import math

from shared.flatten import flatten_files, metrics_tree
from shared.values import parse_number, to_wire


def test_nested_names_join_with_slash_and_prefix_only_on_collision() -> None:
    flat = flatten_files(
        {
            "params.yaml": {"lr": 0.2, "batch": 32},
            "dvclive/params.yaml": {"lr": 0.01, "model": {"layers": 2}},
        }
    )
    assert flat == {
        "params.yaml:lr": 0.2,
        "batch": 32,
        "dvclive/params.yaml:lr": 0.01,
        "model/layers": 2,
    }


def test_metrics_tree_drops_step_and_error_files() -> None:
    tree = metrics_tree(
        {"m.json": {"data": {"train": {"loss": 1}, "step": 3}}, "bad.json": {"error": {}}}
    )
    assert tree == {"m.json": {"train": {"loss": 1}}}


def test_non_finite_values_round_trip_as_strings() -> None:
    assert math.isnan(parse_number("nan") or 0)
    assert parse_number("-inf") == -math.inf
    assert parse_number(True) is None
    assert parse_number("abc") is None
    assert [to_wire(v) for v in (1.5, math.inf, -math.inf, math.nan, None)] == [
        1.5,
        "inf",
        "-inf",
        "nan",
        "nan",
    ]
