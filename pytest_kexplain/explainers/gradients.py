"""Gradient methods: saliency, gradient x input, integrated gradients, SmoothGrad.

All of them reduce to many input-gradient evaluations; each builds its evaluation points
for a chunk of rows and sends them through the model adapter in large batches.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import (
    INTEGRATION_PATH,
    default_batch_size,
    non_finite_error,
)
from pytest_kexplain.errors import IntegrationToleranceWarning, InvalidArgument, NonFiniteError
from pytest_kexplain.explainers.base import (
    Attribution,
    ExplainRequest,
    non_negative_float,
    positive_int,
    prefetched,
    register,
)
from pytest_kexplain.explanation import relative_completeness_gaps


def token_attribution(request: ExplainRequest, method: str) -> Attribution:
    """The method at a token model's embedding output (see explainers/embedding.py), or, for
    a model with several inputs, at the embeddings of its integer inputs
    (explainers/embedded_inputs.py)."""
    if request.embedded_inputs is not None:
        from pytest_kexplain.explainers.embedded_inputs import embedded_attribution

        return embedded_attribution(request, method)
    from pytest_kexplain.explainers.embedding import token_attribution as at_embedding

    return at_embedding(request, method)


def _at_embeddings(request: ExplainRequest) -> bool:
    """Whether token ids are read by Embeddings (one input's, or several inputs' ones)."""
    return request.embedding is not None or request.embedded_inputs is not None


def _reference_outputs(request: ExplainRequest) -> np.ndarray:
    reference = request.reference()[None]
    repeated = np.repeat(reference, len(request.x), axis=0)
    return request.predict_selected(repeated, request.target)


def _row_chunks(request: ExplainRequest, points_per_row: int, n_rows: int) -> Iterator[slice]:
    """Chunks of rows whose evaluation points fill about one model batch."""
    batch = request.batch_size or default_batch_size(request.sample_shape)
    rows = max(1, batch // points_per_row)
    for start in range(0, n_rows, rows):
        yield slice(start, min(start + rows, n_rows))


@register(
    "saliency",
    defaults={},
    requires_gradient=True,
    summary="gradient of the explained output with respect to the input",
)
def saliency(request: ExplainRequest) -> Attribution:
    """Plain input gradient."""
    if _at_embeddings(request):  # token ids: attribute at the embedding
        return token_attribution(request, "saliency")
    grads = request.adapter.gradient(request.x, request.target, batch_size=request.batch_size)
    return Attribution(values=grads, base_values=_reference_outputs(request))


@register(
    "gradient_x_input",
    defaults={},
    requires_gradient=True,
    summary="gradient times (input - reference)",
)
def gradient_x_input(request: ExplainRequest) -> Attribution:
    """Gradient times the input's offset from the reference (zeros without background)."""
    if _at_embeddings(request):  # token ids: attribute at the embedding
        return token_attribution(request, "gradient_x_input")
    grads = request.adapter.gradient(request.x, request.target, batch_size=request.batch_size)
    return Attribution(
        values=grads * (request.x - request.reference()), base_values=_reference_outputs(request)
    )


INTEGRATION_RULES = ("trapezoid", "riemann_middle", "gauss_legendre")
#: the trapezoid's first node sits this fraction of a step along the path, not on the
#: reference: there (zeros) every ReLU is at its kink and a max over equal values splits
#: its gradient, a gradient no other point of the path has, and its weight cost an O(1/steps)
#: completeness gap that doubling the steps only halved (a Conv1D with global max pooling
#: reached max_steps); just off the reference the gradient is the path's own
TRAPEZOID_START = 1e-3


def integration_points(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation coefficients in [0, 1] and weights summing to 1 for a quadrature rule."""
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        alphas[0] = TRAPEZOID_START / steps
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
    elif rule == "riemann_middle":
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    elif rule == "gauss_legendre":
        nodes, node_weights = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1) / 2, node_weights / 2
    else:
        raise InvalidArgument(
            f"option 'rule' must be one of {', '.join(INTEGRATION_RULES)}, got {rule!r}."
        )
    return alphas, weights


def _integrate(request: ExplainRequest, rows: np.ndarray, steps: int, rule: str) -> np.ndarray:
    """Integrated gradients of the given rows with one quadrature rule."""
    alphas, weights = integration_points(steps, rule)
    reference = request.reference()
    in_graph = getattr(request.adapter, "path_gradients", None)  # Keras models
    try:
        summed = None if in_graph is None else in_graph(
            request.x[rows], reference, alphas, weights, request.target[rows],
            batch_size=request.batch_size)
        if summed is None:
            summed = _path_gradient_sums(request, rows, reference, alphas, weights)
    except NonFiniteError as error:
        if not error.rows or len(rows) == len(request.x):
            raise
        # a refinement pass integrates some rows again: name them as the user numbers them
        raise _path_not_finite(request, rows[list(error.rows)], len(request.x),
                               error.kinds) from None
    return summed * (request.x[rows] - reference)


def _path_gradient_sums(request: ExplainRequest, rows: np.ndarray, reference: np.ndarray,
                        alphas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the weighted sum of the gradients at its path points, built in NumPy."""
    shape_tail = (1,) * len(request.sample_shape)
    n_points = len(alphas)
    # the path in the model's own float32 when it has it: no float64 copy to cast per call
    path_dtype = np.result_type(getattr(request.adapter, "dtype", np.float64), np.float32)
    path_alphas = alphas.reshape(1, n_points, *shape_tail).astype(path_dtype)
    path_reference = np.asarray(reference, dtype=path_dtype)
    summed = np.empty((len(rows), *request.sample_shape))

    def path_of(chunk: slice) -> tuple[slice, np.ndarray]:
        delta = (request.x[rows[chunk]] - reference).astype(path_dtype)
        # (rows, points, *sample) -> one flat batch: every step of these rows in few calls
        return chunk, path_reference + path_alphas * delta[:, None]

    bad_rows: set[int] = set()
    kinds: set[str] = set()
    # the next chunk's points are built in a thread while the model runs on these
    for chunk, path in prefetched(path_of, list(_row_chunks(request, n_points, len(rows)))):
        try:
            grads = request.adapter.gradient(
                path.reshape(-1, *request.sample_shape),
                np.repeat(request.target[rows[chunk]], n_points),
                batch_size=request.batch_size,
            ).reshape(path.shape)
        except NonFiniteError as error:
            if not error.rows:
                raise
            # the model call's rows are path points: name the input rows they belong to
            bad_rows.update(chunk.start + point // n_points for point in error.rows)
            kinds.update(error.kinds)
            continue
        summed[chunk] = np.tensordot(weights, grads, axes=([0], [1]))
    if bad_rows:
        raise _path_not_finite(request, np.array(sorted(bad_rows)), len(rows), sorted(kinds))
    return summed


def _path_not_finite(request: ExplainRequest, rows: np.ndarray, n_rows: int,
                     kinds: Sequence[str]) -> NonFiniteError:
    """The error naming the input rows (of n_rows) whose path gradients were not finite."""
    return non_finite_error(getattr(request.adapter, "description", "the model"),
                            INTEGRATION_PATH, rows, n_rows, kinds)


def _check_given_integration(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    """max_steps bounds the refinement: refused where no refinement can run, not ignored."""
    if given.get("max_steps") is None:
        return
    if resolved["tolerance"] is None:
        raise InvalidArgument(
            f"option 'max_steps' ({given['max_steps']}) bounds the refinement of rows over "
            "the tolerance, but tolerance=None turns the refinement off, so every row is "
            f"integrated with steps={resolved['steps']} alone; drop max_steps=, or give a "
            "tolerance (the default is 0.01).")
    if resolved["max_steps"] < resolved["steps"]:
        raise InvalidArgument(
            f"option 'max_steps' ({resolved['max_steps']}) is below steps="
            f"{resolved['steps']}, where the integration starts, so no row could be refined; "
            "pass max_steps >= steps (it doubles steps up to max_steps), or drop max_steps=.")


@register(
    "integrated_gradients",
    defaults={"steps": 64, "rule": "trapezoid", "tolerance": 0.01, "max_steps": 1024},
    requires_gradient=True,
    summary="path integral of gradients from the reference to the input (Sundararajan 2017)",
    check_given=_check_given_integration,
)
def integrated_gradients(request: ExplainRequest) -> Attribution:
    """(x - x') times the average gradient along the straight path from x' to x.

    Rows whose completeness gap exceeds ``tolerance`` (relative to how far their output
    moves from the reference) are integrated again with twice the steps, up to
    ``max_steps``; ``tolerance=None`` turns the refinement off. Rows still over the
    tolerance at ``max_steps`` are recorded in the details (``rows_over_tolerance``, with
    the largest gap as ``completeness_gap``) and reported by ``warn_if_incomplete``.
    """
    if _at_embeddings(request):  # token ids: attribute at the embedding
        return token_attribution(request, "integrated_gradients")
    settings = integration_settings(request.options)  # before any model call
    outputs = request.predict_selected(request.x, request.target)
    base_values = _reference_outputs(request)
    values, details = refined_integration(
        settings, lambda rows, steps: _integrate(request, rows, steps, settings.rule),
        base_values, outputs)
    low_precision = getattr(request.adapter, "low_precision", None)
    if details.get("rows_over_tolerance") and low_precision:
        details["compute_dtype"] = low_precision  # the warning then says why steps cannot help
    return Attribution(values=values, base_values=base_values, details=details)


@dataclass(frozen=True)
class IntegrationSettings:
    """Integrated gradients' options, validated: steps, refinement limit and rule."""

    steps: int
    max_steps: int
    tolerance: float | None
    rule: str


def integration_settings(options: Mapping[str, Any]) -> IntegrationSettings:
    """The integration options, checked (a usage error names the bad one)."""
    tolerance = options["tolerance"]
    settings = IntegrationSettings(
        steps=positive_int(options, "steps"), max_steps=positive_int(options, "max_steps"),
        tolerance=None if tolerance is None else non_negative_float(options, "tolerance"),
        rule=options["rule"])
    integration_points(settings.steps, settings.rule)  # an unknown rule
    return settings


def refined_integration(
    settings: IntegrationSettings, integrate: Callable[[np.ndarray, int], np.ndarray],
    base_values: np.ndarray, outputs: np.ndarray,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Integrate every row, then again with doubled steps the rows whose completeness gap
    exceeds the tolerance, up to max_steps: (values, details).

    integrate(rows, steps) returns those rows' attributions; details hold the steps used and,
    with a tolerance, the largest gap left and the rows still over it.
    """
    steps, tolerance = settings.steps, settings.tolerance
    rows = np.arange(len(outputs))
    values = integrate(rows, steps)
    steps_used = np.full(len(rows), steps)

    def gaps() -> np.ndarray:
        sums = values.reshape(len(values), -1).sum(axis=1)
        return relative_completeness_gaps(sums, base_values, outputs)

    while tolerance is not None and steps < settings.max_steps:
        failing = np.flatnonzero(gaps() > tolerance)
        if len(failing) == 0:
            break
        steps = min(2 * steps, settings.max_steps)
        values[failing] = integrate(failing, steps)
        steps_used[failing] = steps
    details: dict[str, Any] = {
        "max_steps_used": int(steps_used.max()) if len(steps_used) else steps}
    if tolerance is not None:
        final_gaps = gaps()
        details["completeness_gap"] = float(final_gaps.max()) if len(final_gaps) else 0.0
        details["rows_over_tolerance"] = tuple(
            int(row) for row in np.flatnonzero(final_gaps > tolerance))
    return values, details


def integration_shortfall(options: Mapping[str, Any]) -> str | None:
    """Why an integrated-gradients result missed its tolerance, or None when it did not."""
    rows = tuple(options.get("rows_over_tolerance") or ())
    if not rows:
        return None
    shown = ", ".join(str(row) for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
    compute_dtype = options.get("compute_dtype")
    advice = ("Raise max_steps, or pass a larger tolerance to accept the gap" if not compute_dtype
              else f"The model computes in {compute_dtype} (mixed precision), whose round-off "
              "can leave such a gap that no number of steps closes: pass a larger "
              "tolerance (e.g. tolerance=0.05) to accept it, or explain a float32 copy")
    return (
        f"integrated gradients reached max_steps={options.get('max_steps')} with "
        f"{len(rows)} row(s) still over tolerance={options.get('tolerance')}: their "
        "attributions miss the change of the output from the reference by up to "
        f"{options.get('completeness_gap', float('nan')):.2%} of it (rows {shown}). "
        f"{advice}; it is recorded in "
        "explanation.options['completeness_gap'] and ['rows_over_tolerance']."
    )


def warn_if_incomplete(options: Mapping[str, Any], stacklevel: int = 2) -> None:
    """Warn (IntegrationToleranceWarning) when integration stopped short of its tolerance."""
    message = integration_shortfall(options)
    if message is not None:
        warnings.warn(message, IntegrationToleranceWarning, stacklevel=stacklevel + 1)


def feature_spread(request: ExplainRequest) -> np.ndarray:
    """Per-feature range (max - min) of the background, or of X without one; 1 where constant."""
    source = request.background if request.background is not None else request.x
    spread = source.max(axis=0) - source.min(axis=0)
    return np.where(spread > 0, spread, 1.0)


def _padded_steps(request: ExplainRequest) -> np.ndarray | None:
    """X's padded time steps (a Masking layer's mask_value throughout), in X's shape; None
    for a model without a Masking layer reading its input."""
    from pytest_kexplain.adapters.layers import padded_steps

    model = getattr(request.adapter, "model", None)
    if model is None:
        return None
    padded = padded_steps(model, request.x, getattr(request.adapter, "layout", None))
    return None if padded is None else padded.reshape(request.x.shape)


def _require_finite_outputs(request: ExplainRequest, noisy: np.ndarray, rows: slice,
                            samples: int, noise: float) -> None:
    """Refuse gradients taken where the model's output is NaN or infinite (a float16 output
    overflowing on a noisy copy): a gradient there is no explanation, and the outputs were
    finite on X itself, where they are checked."""
    try:
        request.adapter.predict(noisy, batch_size=request.batch_size)
    except NonFiniteError as error:
        bad = np.unique(np.asarray(error.rows, dtype=np.int64) // samples) + (rows.start or 0)
        raise NonFiniteError(
            f"{getattr(request.adapter, 'description', 'the model')} produced "
            f"{'/'.join(error.kinds)} in its outputs on noisy copies of {len(bad)} row(s) of X "
            f"(rows {', '.join(str(int(r)) for r in bad[:10])}{', ...' if len(bad) > 10 else ''})"
            f" that smoothgrad differentiates (noise={noise:g} of each feature's range); a "
            "gradient where the output is not finite explains nothing. Lower noise=, or look "
            "for an overflow (a float16 output past 65504), a division by zero or a log of a "
            "non-positive number on inputs near X.",
            rows=tuple(int(r) for r in bad), kinds=error.kinds) from None


def _check_given_smoothgrad(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> str | None:
    """samples= draws noisy copies: with noise=0 every copy is X, so it changes nothing."""
    if given.get("samples") is None or resolved["noise"] != 0 or resolved["samples"] == 1:
        return None
    return (f"samples={resolved['samples']} is not used: smoothgrad with noise=0 adds no noise, "
            "so every copy is X itself and the result is the plain gradient (method="
            "'saliency'); give a noise > 0 (the default is 0.1), or drop samples=.")


@register(
    "smoothgrad",
    defaults={"noise": 0.1, "samples": 32},
    requires_gradient=True,
    summary="gradient averaged over noisy copies of the input (Smilkov 2017)",
    check_given=_check_given_smoothgrad,
)
def smoothgrad(request: ExplainRequest) -> Attribution:
    """Mean gradient over Gaussian-perturbed inputs; noise is relative to each feature's range."""
    if _at_embeddings(request):  # token ids: attribute at the embedding
        return token_attribution(request, "smoothgrad")
    noise = non_negative_float(request.options, "noise")
    samples = positive_int(request.options, "samples")
    sigma = noise * feature_spread(request)
    rng = request.rng()
    padded = _padded_steps(request)
    values = np.empty_like(request.x)
    for rows in _row_chunks(request, samples, len(request.x)):
        x = request.x[rows]
        noisy = x[:, None] + rng.standard_normal((len(x), samples, *request.sample_shape)) * sigma
        if padded is not None:  # noise there would make the model read steps it skips
            noisy = np.where(padded[rows][:, None], x[:, None], noisy)
        flat = noisy.reshape(-1, *request.sample_shape)
        grads = request.adapter.gradient(
            flat, np.repeat(request.target[rows], samples), batch_size=request.batch_size
        )
        _require_finite_outputs(request, flat, rows, samples, noise)
        values[rows] = grads.reshape(noisy.shape).mean(axis=1)
    return Attribution(values=values, base_values=_reference_outputs(request))
