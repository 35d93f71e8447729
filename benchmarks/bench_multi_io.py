"""Several inputs and outputs cost no more per model row than a single-input model.

Two models do the same computation with the same layers and weights: a single-input MLP on
30 features whose two heads (1 and 3 units) are concatenated into one 4-unit output,
explained with target=0; and a functional model taking a dict of two inputs (20 + 10
features, concatenated) with a dict of the two heads as outputs, 'score' and 'kind',
explained with output='score'. Each has one Concatenate and two heads, so by themselves
they cost the same (the ratio of their own compiled forward passes on their native inputs,
no pytest-kexplain involved, is in the details); each method runs on both with the same
rows, alternately, and the ratio of the explanation times is what splitting flat rows into
inputs and selecting one output add per model row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common import TargetResult, alternated

GOAL = 1.1  # within timing noise of "no more"
CALLS_PER_TIMING = 8
N_FEATURES, SPLIT = 30, 20
METHODS = {  # method -> (rows, options)
    "integrated_gradients": (20000, {}),
    "shap": (400, {}),
    "permutation": (16000, {}),
    "occlusion": (40000, {}),
}


def models() -> tuple[Any, Any]:
    """The single-input model and the two-input, two-output model with the same weights."""
    import keras

    keras.utils.set_random_seed(0)
    single_in = keras.Input((N_FEATURES,))
    hidden = [keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(32, activation="tanh")]
    heads = [keras.layers.Dense(1), keras.layers.Dense(3)]
    h = single_in
    for layer in hidden:
        h = layer(h)
    single = keras.Model(single_in, keras.layers.Concatenate()([head(h) for head in heads]))

    num = keras.Input((SPLIT,), name="num")
    aux = keras.Input((N_FEATURES - SPLIT,), name="aux")
    h = keras.layers.Concatenate()([num, aux])
    copies = [keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(32, activation="tanh")]
    for layer in copies:
        h = layer(h)
    score, kind = keras.layers.Dense(1, name="score"), keras.layers.Dense(3, name="kind")
    multi = keras.Model({"num": num, "aux": aux}, {"score": score(h), "kind": kind(h)})
    for source, copy in zip([*hidden, *heads], [*copies, score, kind]):
        copy.set_weights(source.get_weights())
    return single, multi


def own_cost_ratio(single: Any, multi: Any, repeats: int = 11) -> tuple[float, dict[str, Any]]:
    """The models' own cost per row, without this package: compiled calls on native inputs
    (the same layers, so about 1; read next to the explanation ratios)."""
    import tensorflow as tf

    x = np.random.default_rng(1).normal(size=(400_000, N_FEATURES)).astype(np.float32)
    inputs = {"num": x[:, :SPLIT], "aux": x[:, SPLIT:]}

    @tf.autograph.experimental.do_not_convert
    def single_score(batch: Any) -> Any:
        return single(batch, training=False)[:, 0]

    @tf.autograph.experimental.do_not_convert
    def multi_score(batch: Any) -> Any:
        return multi(batch, training=False)["score"][:, 0]

    single_call, multi_call = tf.function(single_score), tf.function(multi_score)
    single_call(x), multi_call(inputs)  # compile

    # one call takes about 0.03 s: each timing is CALLS_PER_TIMING calls
    def single_calls() -> None:
        for _ in range(CALLS_PER_TIMING):
            single_call(x).numpy()

    def multi_calls() -> None:
        for _ in range(CALLS_PER_TIMING):
            multi_call(inputs).numpy()

    single_seconds, multi_seconds, pairs = alternated(single_calls, multi_calls, repeats)
    ratio = multi_seconds / single_seconds
    return ratio, {"single_seconds": [p[0] for p in pairs],
                   "multi_seconds": [p[1] for p in pairs], "ratio": ratio,
                   "rows_per_timing": CALLS_PER_TIMING * len(x)}


def run(repeats: int = 7) -> tuple[list[TargetResult], dict[str, Any]]:
    """Time every method on both models; one target per method."""
    from pytest_kexplain import clear_cache, explain

    results: list[TargetResult] = []
    raw: dict[str, Any] = {}

    single, multi = models()
    model_ratio, raw["models_alone"] = own_cost_ratio(single, multi)
    rng = np.random.default_rng(0)
    background = rng.normal(size=(50, N_FEATURES))
    for method, (rows, options) in METHODS.items():
        x = rng.normal(size=(rows, N_FEATURES))
        as_inputs = {"num": x[:, :SPLIT], "aux": x[:, SPLIT:]}
        background_inputs = {"num": background[:, :SPLIT], "aux": background[:, SPLIT:]}

        def explain_single() -> Any:
            clear_cache()
            return explain(single, x, method=method, target=0, background=background, **options)

        def explain_multi() -> Any:
            clear_cache()
            return explain(multi, as_inputs, method=method, output="score",
                           background=background_inputs, **options)

        same = np.allclose(explain_single().values, explain_multi().values, rtol=1e-3, atol=1e-5)
        # the ratio is of the fastest runs (what is left when the load does not interfere)
        single_seconds, multi_seconds, pairs = alternated(explain_single, explain_multi, repeats)
        ratio = multi_seconds / single_seconds
        raw[method] = {"rows": rows, "single_seconds": [p[0] for p in pairs],
                       "multi_seconds": [p[1] for p in pairs], "ratio": ratio,
                       "models_alone_ratio": model_ratio, "same_values": same}
        results.append(TargetResult(
            f"multi-io: two inputs, two outputs / one of each, per model row ({method}, "
            f"{rows} rows)", ratio, GOAL, higher_is_better=False,
            details=raw[method]))
        if not same:
            raise RuntimeError(f"{method}: the two models were explained differently")
    return results, raw


if __name__ == "__main__":
    for result in run()[0]:
        print(result.row())
