"""Several inputs and outputs cost no more per model row than a single-input model.

Two models do the same computation: a single-input MLP on 30 features with one 4-unit output
(explained with target=0), and a functional model taking a dict of two inputs (20 + 10
features, concatenated) with a dict of two outputs, 'score' (the first unit) and 'kind' (the
other three), explained with output='score'. The weights are copied, so both compute the same
numbers with the same layers. Each method runs on both with the same rows. The two-input
model costs more by itself (its own Concatenate, two output heads instead of one), so the
ratio of the explanation times is divided by the ratio of the models' own compiled forward
passes on their native inputs (no pytest-kexplain involved): what is left is the cost per
model row of splitting flat rows into inputs and selecting one output. Both ratios are in
the details.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common import TargetResult, alternated, measure

GOAL = 1.1  # within timing noise of "no more"
N_FEATURES, SPLIT = 30, 20
METHODS = {  # method -> (rows, options)
    "integrated_gradients": (20000, {}),
    "shap": (400, {}),
    "permutation": (16000, {}),
    "occlusion": (8000, {}),
}


def models() -> tuple[Any, Any]:
    """The single-input model and the two-input, two-output model with the same weights."""
    import keras

    keras.utils.set_random_seed(0)
    single_in = keras.Input((N_FEATURES,))
    hidden = [keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(32, activation="tanh")]
    units = keras.layers.Dense(4)
    h = single_in
    for layer in hidden:
        h = layer(h)
    single = keras.Model(single_in, units(h))

    num = keras.Input((SPLIT,), name="num")
    aux = keras.Input((N_FEATURES - SPLIT,), name="aux")
    h = keras.layers.Concatenate()([num, aux])
    copies = [keras.layers.Dense(64, activation="tanh"), keras.layers.Dense(32, activation="tanh")]
    for layer in copies:
        h = layer(h)
    score, kind = keras.layers.Dense(1, name="score"), keras.layers.Dense(3, name="kind")
    multi = keras.Model({"num": num, "aux": aux}, {"score": score(h), "kind": kind(h)})
    for source, copy in zip(hidden, copies):
        copy.set_weights(source.get_weights())
    kernel, bias = units.get_weights()
    score.set_weights([kernel[:, :1], bias[:1]])
    kind.set_weights([kernel[:, 1:], bias[1:]])
    return single, multi


def own_cost_ratio(single: Any, multi: Any, repeats: int = 11) -> tuple[float, dict[str, Any]]:
    """The models' own cost per row, without this package: compiled calls on native inputs.

    The two-input model does more than the single one by itself (its Concatenate, two output
    heads instead of one); what the explanation may not add is measured against this.
    """
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
    pairs = [(measure(lambda: single_call(x).numpy(), 1).median,
              measure(lambda: multi_call(inputs).numpy(), 1).median) for _ in range(repeats)]
    ratio = min(p[1] for p in pairs) / min(p[0] for p in pairs)
    return ratio, {"single_seconds": [p[0] for p in pairs],
                   "multi_seconds": [p[1] for p in pairs], "ratio": ratio}


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
            f"{rows} rows)", ratio / model_ratio, GOAL, higher_is_better=False,
            details=raw[method]))
        if not same:
            raise RuntimeError(f"{method}: the two models were explained differently")
    return results, raw


if __name__ == "__main__":
    for result in run()[0]:
        print(result.row())
