"""method="lime" against the lime package's LimeTabularExplainer on the breast-cancer MLP.

200 rows, 5,000 samples each, continuous sampling (discretize_continuous=False), all
30 features in the surrogate; the same seed, so both compute the same numbers (checked).
lime explains one row at a time; it is timed with the model handed over as a lime user
does (``model.predict``), and, for reference, with the compiled call our adapter uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common import TargetResult, measure

ROWS = 200
SAMPLES = 5000
SPEEDUP_GOAL = 30.0


def run(repeats: int = 3) -> tuple[list[TargetResult], dict[str, Any]]:
    """Measure the LIME target; returns the results and the raw numbers."""
    from lime.lime_tabular import LimeTabularExplainer

    from pytest_kexplain import clear_cache, explain, zoo
    from pytest_kexplain.adapters import get_adapter

    data = zoo.breast_cancer_data()
    model = zoo.train_classifier(data, epochs=20)
    x = np.concatenate([data.x_test, data.x_train])[:ROWS]

    def ours() -> Any:
        clear_cache()
        return explain(model, x, method="lime", background=data.x_train, seed=0,
                       samples=SAMPLES)

    ours_time = measure(ours, repeats, warmup=1)
    ours_values = ours().values
    _, adapter = get_adapter(model)
    callables = {
        "model.predict(x, verbose=0)": lambda a: model.predict(a, verbose=0)[:, 0],
        "compiled (our adapter's predict)": lambda a: adapter.predict(a)[:, 0],
    }

    def theirs(predict: Any, rows: np.ndarray) -> np.ndarray:
        explainer = LimeTabularExplainer(data.x_train, mode="regression",
                                         discretize_continuous=False, random_state=0,
                                         feature_selection="none")
        weights = np.zeros(rows.shape)
        for i, row in enumerate(rows):
            found = explainer.explain_instance(row, predict, num_features=rows.shape[1],
                                               num_samples=SAMPLES)
            for feature, weight in found.as_map()[1]:
                weights[i, feature] = weight
        return weights

    lime_times = {}
    for name, predict in callables.items():
        lime_times[name] = measure(lambda p=predict: theirs(p, x), 1, warmup=0).median
    agreement = theirs(callables["compiled (our adapter's predict)"], x[:20])
    max_difference = float(np.abs(agreement - ours_values[:20]).max())
    typical = lime_times["model.predict(x, verbose=0)"]
    speedup = typical / ours_time.median
    result = TargetResult(
        "lime speed-up vs lime.LimeTabularExplainer (200 rows)", speedup, SPEEDUP_GOAL, True,
        details={"ours_seconds": ours_time.median, "lime_seconds": lime_times,
                 "speedup_vs_compiled_lime": lime_times["compiled (our adapter's predict)"]
                 / ours_time.median,
                 "max_abs_difference_first_20_rows": max_difference})
    raw = {"ours": ours_time.runs, "lime": lime_times, "max_abs_difference": max_difference}
    return [result], raw
