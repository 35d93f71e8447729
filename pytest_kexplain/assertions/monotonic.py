"""Check that the output moves in one direction as one feature increases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pytest_kexplain.adapters.binding import model_data
from pytest_kexplain.adapters.multi_io import NAME_SEPARATOR
from pytest_kexplain.api import channels_first_of, check_unused_keywords
from pytest_kexplain.assertions import messages
from pytest_kexplain.assertions._common import (
    check_choice,
    check_count,
    check_number,
    fail,
    feature_index,
    output_keywords,
)
from pytest_kexplain.assertions._outputs import OutputModel, bind_model
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.events import recorded
from pytest_kexplain.explainers.base import round_off_epsilon, without_round_off
from pytest_kexplain.groups import flatten_input_groups
from pytest_kexplain.inputs import (
    FeatureBounds,
    RowSpace,
    holds_numbers_only,
    is_dataframe,
    row_space,
)
from pytest_kexplain.records import PlotMixin
from pytest_kexplain.settings import with_defaults

DIRECTIONS = ("increasing", "decreasing")
# Feature values checked along the segment between each pair the search draws.
SEGMENT_POINTS = 8
# Features per line when a counterexample's full row is shown.
FEATURES_PER_LINE = 6


@dataclass(frozen=True)
class Counterexample:
    """Two inputs differing only in the checked feature, whose outputs move the wrong way."""

    source: str  # "ICE curve" or "hypothesis search"
    row: int | None  # the row of X, None for a generated row
    values: tuple[float, ...]  # the whole input at the lower feature value
    low: float
    high: float
    output_low: float
    output_high: float
    #: the unit the row follows, when the target is chosen per row ('barbera' for
    #: target='predicted'); None when every row follows the check's one output
    output: str | None = None

    @property
    def change(self) -> float:
        """Output at the higher value minus output at the lower one."""
        return self.output_high - self.output_low


@dataclass(frozen=True)
class MonotonicResult(PlotMixin):
    """What the sweep and the search examined and the largest move against the direction."""

    feature: str
    direction: str
    tolerance: float
    grid: tuple[float, ...]
    n_rows: int
    n_rows_violating: int
    search_examples: int
    worst_violation: float  # largest move against the direction seen (<= tolerance on success)
    counterexamples: tuple[Counterexample, ...]
    #: the explained output as messages name it ("output", "setosa", "kind[big]")
    output: str = "output"


class _Violation(Exception):
    def __init__(self, counterexample: Counterexample):
        super().__init__("monotonicity violated")
        self.counterexample = counterexample


def _ice_curves(bound: OutputModel, x: np.ndarray, column: int, grid: np.ndarray) -> np.ndarray:
    """Output of every row with the feature set to each grid value: shape (rows, grid)."""
    n, points = len(x), len(grid)
    sweep = np.repeat(x, points, axis=0)
    sweep[:, column] = np.tile(grid, n)
    targets = np.repeat(bound.row_targets(x), points)
    return bound.outputs(sweep, targets).reshape(n, points)


def _worst_pairs(curves: np.ndarray, epsilon: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the largest fall of a curve (a later point below an earlier one) and where.

    A fall within the round-off of the model's precision (epsilon) is none: a flat stretch
    computed at other positions of one call (PyTorch) differs by an ulp or two."""
    n, points = curves.shape
    running_best = np.maximum.accumulate(curves, axis=1)
    best_at = np.zeros((n, points), dtype=int)
    for j in range(1, points):
        improved = curves[:, j] >= running_best[:, j - 1]
        best_at[:, j] = np.where(improved, j, best_at[:, j - 1])
    falls = without_round_off(running_best - curves,
                              np.maximum(np.abs(running_best), np.abs(curves)), epsilon)
    high = falls.argmax(axis=1)
    low = best_at[np.arange(n), high]
    return falls.max(axis=1), low, high


def _segment(feature: FeatureBounds, low: float, high: float, points: int) -> np.ndarray:
    """Increasing values from low to high: evenly spaced, or the discrete values in between."""
    if feature.kind == "float":
        return np.linspace(low, high, points)
    inside = feature.grid(points)
    return np.unique(np.r_[low, inside[(inside > low) & (inside < high)], high])


def _inside_hypothesis_test() -> bool:
    """Whether a hypothesis test is running: a nested search would fail its health check."""
    import hypothesis

    return bool(hypothesis.currently_in_test_context())


def _search(
    bound: OutputModel, space: RowSpace, x: np.ndarray, column: int, orientation: float,
    tolerance: float, max_examples: int, seed: int,
) -> tuple[Counterexample | None, int]:
    """Hypothesis search for a violating pair, shrunk; bounded and seeded so CI cannot flake."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, Verbosity, given, strategies as st

    from pytest_kexplain.strategies import feature_strategy, row_arrays

    feature = space.features[column]
    examples = 0
    if feature.low == feature.high:
        return None, 0  # a constant feature has no pair of values to compare
    # the checked feature moves between values it takes (never NaN); the others may be missing
    pairs = st.lists(feature_strategy(replace(feature, missing=False)), min_size=2, max_size=2,
                     unique=True).map(sorted)

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=max_examples, deadline=None, database=None, derandomize=False,
        phases=(Phase.generate, Phase.target, Phase.shrink), report_multiple_bugs=False,
        verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck), print_blob=False,
    )
    @given(row_arrays(space, x=x), pairs)
    def search(row: np.ndarray, values: list[float]) -> None:
        nonlocal examples
        examples += 1
        # Each example checks the row along the whole segment between the drawn values, so
        # a pair of values that happen to straddle a dip still reveals it; shrinking then
        # narrows the segment and simplifies the row.
        points = _segment(feature, values[0], values[1], SEGMENT_POINTS)
        rows = np.repeat(row, len(points), axis=0)
        rows[:, column] = points
        curve = bound.outputs(rows, np.repeat(bound.row_targets(rows[:1]), len(points)))
        falls, lows, highs = _worst_pairs(orientation * curve[None],
                                          round_off_epsilon(bound.adapter))
        hypothesis.target(float(falls[0]))
        if falls[0] > tolerance:
            low, high = int(lows[0]), int(highs[0])
            values_at_low = rows[low]
            raise _Violation(Counterexample(
                "hypothesis search", None, tuple(map(float, values_at_low)), float(points[low]),
                float(points[high]), float(curve[low]), float(curve[high]),
                bound.unit_name(rows[:1]) if bound.per_row else None))

    try:
        search()
    except _Violation as violation:
        return violation.counterexample, examples
    return None, examples


def _check_ordered(X: Any, feature: str, direction: str) -> None:
    """A DataFrame column of unordered categories (strings, or a category dtype that is not
    ordered) has no direction: its sweep would follow an arbitrary (alphabetical) order."""
    frame, column_name, access = X, feature, "X"
    if isinstance(X, Mapping) and NAME_SEPARATOR in feature:  # {input: DataFrame}: "num:plan"
        name, column_name = feature.split(NAME_SEPARATOR, 1)
        frame, access = X.get(name), f"X[{name!r}]"
    if not is_dataframe(frame):
        return
    matches = [column for column in frame.columns if str(column) == column_name]
    if len(matches) != 1:
        return  # an unknown name is reported with the others
    series = frame[matches[0]]
    dtype = series.dtype
    if str(dtype) == "category":
        if dtype.ordered:
            return
        values = list(dtype.categories)
    elif getattr(dtype, "kind", "O") in "biufcmM" or holds_numbers_only(series):
        return
    else:
        values = sorted({v for v in series if isinstance(v, str)})
    if not values or all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                         for v in values):
        return  # numeric categories order themselves
    shown = ", ".join(map(repr, values[:6])) + (", ..." if len(values) > 6 else "")
    column = f"{access}[{column_name!r}]"
    raise InvalidArgument(
        f"feature {feature!r} holds unordered categories ({shown}), so {direction!r} has no "
        "meaning for it (a sweep would follow the order they happen to be listed in). If its "
        f"values have an order, declare it: {column} = pd.Categorical({column}, "
        "categories=[...], ordered=True), in that order; to check what one category does, use "
        f"assert_invariant(model, X, {{{feature!r}: {values[0]!r}}}, atol=...).")


@recorded("assert_monotonic")
def assert_monotonic(
    model: Any, X: Any, feature: str, *, direction: str = "increasing", tolerance: float = 0.0,
    grid_points: int = 20, max_examples: int = 100,
    groups: Sequence[Sequence[str]] | None = None, integer: Sequence[str] = (),
    fixed: Sequence[str] | Mapping[str, float] | None = None, **explain_kwargs: Any,
) -> MonotonicResult:
    """Assert the output never moves against `direction` when only `feature` increases.

    ICE curves sweep `feature` over a grid from every row of X; a seeded hypothesis search
    then draws rows that could occur in X (see `pytest_kexplain.strategies.rows_like`:
    observed ranges, integer, constant and categorical columns, one-hot groups, plus the
    `groups`, `integer` and `fixed` constraints) and reports a shrunk counterexample.
    """
    __tracebackhide__ = True
    direction = check_choice("direction", direction, DIRECTIONS)
    _check_ordered(X, feature, direction)
    X = model_data(model, X)
    tolerance = check_number("tolerance", tolerance, low=0.0)
    grid_points = check_count("grid_points", grid_points, low=2)
    max_examples = check_count("max_examples", max_examples, low=0)
    keywords = output_keywords(explain_kwargs)
    seed = check_count("seed", with_defaults(explain_kwargs).get("seed", 0), low=0)
    bound, prepared = bind_model(model, X, keywords)
    check_unused_keywords(model, X, prepared, with_defaults(explain_kwargs), groups=False)
    if prepared.array.ndim != 2:
        shape = prepared.array.shape[1:]
        names = list(prepared.feature_names)
        flat_name, where = ((f"x{names.index(feature)}", f" ({feature!r} is the flat row's "
                             f"x{names.index(feature)})") if feature in names
                            else ("x<i>", ", <i> being the value's flat index"))
        raise InvalidArgument(
            f"assert_monotonic sweeps one column of tabular rows (n_samples, n_features); X has "
            f"samples of shape {shape}. To check one value of a sequence or image, pass a "
            f"callable that reshapes flat rows and X flattened: assert_monotonic(lambda rows: "
            f"model.predict(rows.reshape(-1, {', '.join(map(str, shape))}), verbose=0), "
            f"X.reshape(len(X), -1), {flat_name!r}){where}."
        )
    _check_not_a_token(feature, prepared.feature_names, with_defaults(explain_kwargs))
    # several inputs: the flat rows, in the model's input order, with qualified names
    if prepared.layout is not None:  # {input: Grid(...), ...}: groups of the flat row
        groups = flatten_input_groups(groups, prepared.layout, prepared.feature_names,
                                      len(prepared.array), channels_first_of(model, prepared, groups))
    _check_not_a_group(feature, prepared.feature_names, groups)
    column = feature_index(prepared.feature_names, feature)
    space = row_space(X if prepared.layout is None else np.array(prepared.array),
                      keywords.get("feature_names") if prepared.layout is None
                      else prepared.feature_names, groups=groups, integer=integer, fixed=fixed)
    _check_movable(space, column, fixed)
    bounds = space.features
    grid = bounds[column].grid(grid_points)
    _check_varies(bounds[column], grid, len(prepared.array))
    orientation = 1.0 if direction == "increasing" else -1.0
    x = np.array(prepared.array)
    curves = _ice_curves(bound, x, column, grid)
    drops, lows, highs = _worst_pairs(orientation * curves, round_off_epsilon(bound.adapter))
    counterexamples = []
    row = int(drops.argmax())
    if drops[row] > tolerance:
        values = x[row].copy()
        values[column] = grid[lows[row]]
        counterexamples.append(Counterexample(
            "ICE curve", row, tuple(map(float, values)), float(grid[lows[row]]),
            float(grid[highs[row]]),
            float(curves[row, lows[row]]), float(curves[row, highs[row]]),
            bound.unit_name(x[row:row + 1]) if bound.per_row else None))
    examples = 0
    target_per_row = keywords.get("target") is not None and not isinstance(
        keywords.get("target"), (int, np.integer, str))
    if max_examples and not target_per_row and not _inside_hypothesis_test():
        found, examples = _search(bound, space, prepared.array, column, orientation, tolerance,
                                  max_examples, seed)
        if found is not None:
            counterexamples.append(found)
    worst = max([float(drops.max()), *(orientation * -c.change for c in counterexamples)])
    result = MonotonicResult(
        feature, direction, tolerance, tuple(float(g) for g in grid), len(x),
        int((drops > tolerance).sum()), examples, worst, tuple(counterexamples), bound.label)
    if counterexamples:
        fail(_failure_message(result, bounds, column, bound.label), result)
    return result


def _check_not_a_token(feature: str, names: Sequence[str], keywords: Mapping[str, Any]) -> None:
    """A token string (vocabulary=) is no column: ids are categories, not quantities to sweep."""
    __tracebackhide__ = True
    vocabulary = keywords.get("vocabulary")
    if vocabulary is None or feature in names:
        return
    from pytest_kexplain.tokens import is_per_input, vocabulary_lookup

    try:
        vocabularies = list(vocabulary.values()) if is_per_input(vocabulary) else [vocabulary]
        strings = {token for v in vocabularies for token in vocabulary_lookup(v).values()}
    except Exception:  # a malformed vocabulary is explain()'s to report
        return
    if feature in strings or feature.split(":", 1)[-1] in strings:
        raise InvalidArgument(
            f"{feature!r} is a token of the vocabulary, not a column of X: assert_monotonic "
            "sweeps one column's values, and token ids are categories, not quantities (the "
            "vocabulary names attributions). Check the token's effect with assert_invariant "
            "and a callable that replaces its id, or sweep a position of X by name "
            f"({', '.join(list(names)[:3])}, ...).")


def _check_movable(space: RowSpace, column: int, fixed: Any) -> None:
    """A feature held fixed or tied into a one-hot group cannot be moved on its own."""
    __tracebackhide__ = True
    name = space.features[column].name
    group = space.group_of(column)
    if group is not None:
        members = ", ".join(space.features[c].name for c in group)
        raise InvalidArgument(
            f"feature {name!r} is one column of the one-hot group [{members}]: it cannot "
            "increase on its own (exactly one of them is 1). Check the category's effect with "
            "assert_invariant, or pass groups=[] if these columns are not one-hot.")
    if fixed is not None and name in (fixed if not isinstance(fixed, str) else [fixed]):
        raise InvalidArgument(f"feature {name!r} is fixed, so it cannot be checked for "
                              "monotonicity; remove it from fixed=.")


def _check_not_a_group(feature: str, feature_names: Sequence[str], groups: Any) -> None:
    """A group's name (one of explain()'s groups, 'image:patch(0,0)' or 'seq:t4') is not a
    value to sweep: say so and name its members, not 'is not a feature of X'."""
    if not isinstance(groups, Mapping) or feature not in groups or feature in feature_names:
        return
    members = groups[feature]
    if isinstance(members, np.ndarray) and members.dtype == bool:
        flat = members.reshape(-1, len(feature_names)).any(axis=0) if members.size % len(
            feature_names) == 0 else np.zeros(len(feature_names), dtype=bool)
        members = [feature_names[int(i)] for i in np.flatnonzero(flat)]
    shown = [str(m) for m in members] if isinstance(members, (list, tuple, np.ndarray)) else []
    listed = ", ".join(shown[:5]) + (f", ... ({len(shown)} in all)" if len(shown) > 5 else "")
    raise InvalidArgument(
        f"{feature!r} is a group of groups=, not a feature: assert_monotonic sweeps the value "
        "of one feature" + (f"; name one of its members ({listed})" if listed else "") + ".")


def _check_varies(feature: FeatureBounds, grid: np.ndarray, n_rows: int) -> None:
    """The sweep and the search draw the feature's values from X: a feature with one value
    there (one row, or a constant column) has no pair to compare, and would pass unchecked."""
    __tracebackhide__ = True
    if len(grid) > 1:
        return
    rows = "X's only row" if n_rows == 1 else f"all {n_rows} rows of X"
    if np.isnan(grid[0]):
        raise InvalidArgument(
            f"feature {feature.name!r} is missing (NaN) in {rows}, so there is no range to "
            "sweep it over: the ICE curves and the hypothesis search take its values from the "
            "values X holds. Pass rows in which it is present (a sample of the training data).")
    raise InvalidArgument(
        f"feature {feature.name!r} takes the single value {feature.label(grid[0])} in {rows}, "
        "so there is no range to sweep it over and nothing would be checked: the ICE curves "
        "and the hypothesis search take its values from X. Pass rows in which it varies (a "
        "sample of the training data).")


def _full_row(bounds: Sequence[FeatureBounds], counterexample: Counterexample, column: int
              ) -> str:
    """Every feature of a counterexample's row as name=value, the checked one as from -> to."""
    feature = bounds[column]
    cells = [f"{b.name}={feature.label(counterexample.low)} -> {feature.label(counterexample.high)}"
             if i == column else f"{b.name}={b.label(v)}"
             for i, (b, v) in enumerate(zip(bounds, counterexample.values))]
    lines = [", ".join(cells[i:i + FEATURES_PER_LINE])
             for i in range(0, len(cells), FEATURES_PER_LINE)]
    return f",\n{messages.INDENT}{messages.INDENT}".join(lines)


def _failure_message(
    result: MonotonicResult, bounds: Sequence[FeatureBounds], column: int, output: str = "output"
) -> str:
    feature = bounds[column]
    moves = "decreases" if result.direction == "increasing" else "increases"
    ordered = sorted(result.counterexamples, key=lambda c: -abs(c.change))
    rows: list[tuple[Any, ...]] = [
        (c.source, "-" if c.row is None else c.row, feature.label(c.low), feature.label(c.high),
         c.output_low, c.output_high, c.change) for c in ordered]
    header: tuple[str, ...] = ("found by", "row", f"{result.feature} from", "to", "output from",
                               "to", "change")
    if any(c.output is not None for c in ordered):  # target='predicted': each row's own class
        header = (*header[:2], "class", *header[2:])
        rows = [(*cells[:2], c.output or "-", *cells[2:]) for cells, c in zip(rows, ordered)]
    described = "".join(
        f"\n{messages.INDENT}{c.source}, "
        f"{'generated row' if c.row is None else f'row {c.row}'}: {_full_row(bounds, c, column)}"
        for c in ordered)
    return (
        f"{messages.the_output(output)} {moves} when "
        f"{result.feature} increases (expected {result.direction}, "
        f"tolerance={messages.number(result.tolerance)}); worst counterexample first:\n"
        + messages.table(header, rows)
        + described + "\n"
        f"{messages.INDENT}{result.n_rows_violating} of {result.n_rows} ICE curves over "
        f"{len(result.grid)} grid values violate it; the hypothesis search ran "
        f"{result.search_examples} examples."
    )
