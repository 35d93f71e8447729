"""Adapter for scikit-learn estimators (and look-alikes) passed directly.

Which method is explained, as a user of scikit-learn expects:

- a classifier: ``predict_proba`` (one output per class, labelled by ``classes_``); without
  it (``SVC(probability=False)``, ``RidgeClassifier``) ``decision_function``;
- anything else (regressors, pipelines ending in one): ``predict``.

To explain another method, pass the bound method itself (``explain(clf.decision_function,
X)``). Estimators have no gradient: the model-agnostic methods explain them.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import batches, require_finite
from pytest_kexplain.adapters.multi_io import InputLayout, OutputChoice, SelectsRawOutput
from pytest_kexplain.adapters.outputs import as_output_matrix
from pytest_kexplain.errors import MODEL_AGNOSTIC_ADVICE, InvalidArgument, ModelHasNoGradientError

#: rows per estimator call: estimators are vectorised, Python overhead is per call
ESTIMATOR_BATCH_ROWS = 65536
RESPONSE_METHODS = ("predict_proba", "decision_function", "predict")


def is_sklearn_estimator(obj: Any) -> bool:
    """Whether obj looks like a scikit-learn estimator (checked without importing sklearn)."""
    return (not isinstance(obj, type) and hasattr(obj, "get_params") and hasattr(obj, "fit")
            and any(hasattr(obj, method) for method in RESPONSE_METHODS))


def _is_classifier(estimator: Any) -> bool:
    try:
        from sklearn.base import is_classifier

        return bool(is_classifier(estimator))
    except Exception:  # a look-alike scikit-learn does not know
        return getattr(estimator, "_estimator_type", None) == "classifier"


def response_method(estimator: Any) -> str:
    """The method to explain: predict_proba, else decision_function for classifiers; predict."""
    if _is_classifier(estimator):
        for method in ("predict_proba", "decision_function"):
            if hasattr(estimator, method):  # available_if hides unusable ones
                return method
        raise InvalidArgument(
            f"{type(estimator).__name__} is a classifier without predict_proba or "
            "decision_function; its predict() returns labels, which have no attribution. Pass a "
            "function returning scores instead, e.g. explain(lambda x: ..., X)."
        )
    if not hasattr(estimator, "predict"):
        raise InvalidArgument(f"{type(estimator).__name__} has no predict(); nothing to explain.")
    return "predict"


def _check_fitted(estimator: Any) -> None:
    try:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:
        return
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise InvalidArgument(
            f"the {type(estimator).__name__} is not fitted yet; call fit(X, y) before explaining "
            "it."
        ) from exc
    except TypeError:  # not an estimator scikit-learn can inspect
        return


class SklearnAdapter(SelectsRawOutput):
    """Calls an estimator's response method in large batches; no gradient."""

    differentiable = False
    declared_inputs = None

    def __init__(self, estimator: Any, output: OutputChoice | None = None,
                 categories: Mapping[str, Any] | None = None):
        _check_fitted(estimator)
        #: pandas CategoricalDtype per category column of X: the estimator gets categories back
        self.categories = dict(categories or {})
        self.estimator = estimator
        self.response = response_method(estimator)
        self.output_choice = output
        self.output_head: str | None = None
        self.layout: InputLayout | None = None
        self.description = f"scikit-learn {type(estimator).__name__} ({self.response})"
        classes = getattr(estimator, "classes_", None)
        self._classes = None if classes is None or np.ndim(classes) != 1 else tuple(
            str(label) for label in classes)
        names = getattr(estimator, "feature_names_in_", None)
        self.feature_names = None if names is None else tuple(str(name) for name in names)
        n_features = getattr(estimator, "n_features_in_", None)
        self.n_features = None if n_features is None else int(n_features)
        self._selector: Any = None
        self._resolved = False
        self._n_outputs: int | None = None
        self._variants: dict[Any, SklearnAdapter] = {}

    # -- labels and defaults ---------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...] | None:
        """classes_ when the explained outputs are one per class."""
        if self._classes is None or self._n_outputs not in (None, len(self._classes)):
            return None
        return self._classes

    @property
    def default_target(self) -> int | None:
        """For a binary classifier's probabilities, the positive class (classes_[1])."""
        if self.response == "predict_proba" and self._classes is not None \
                and len(self._classes) == 2 and self._selector is None:
            return 1
        return None

    def configured(self, layout: InputLayout | None, output: OutputChoice | None) -> SklearnAdapter:
        """The adapter for the chosen output (estimators take one input array)."""
        if layout is not None:
            raise InvalidArgument(
                f"{self.description} takes one 2-D input, not several; pass X as one array or "
                "DataFrame."
            )
        if output is None:
            return self
        if output not in self._variants:
            self._variants[output] = SklearnAdapter(self.estimator, output, self.categories)
        return self._variants[output]

    def with_categories(self, categories: Mapping[str, Any]) -> SklearnAdapter:
        """The adapter that hands X's category columns (pandas CategoricalDtype by column) to
        the estimator as categories again, as it was fitted, rather than as their codes."""
        if not categories or self.feature_names is None:
            return self
        key = ("categories", tuple((name, str(dtype)) for name, dtype in categories.items()))
        if key not in self._variants:
            self._variants[key] = SklearnAdapter(self.estimator, self.output_choice, categories)
        return self._variants[key]

    # -- calls -----------------------------------------------------------------------------
    def _frame(self, x: np.ndarray) -> Any:
        if self.feature_names is None:
            return x
        import pandas as pd  # an estimator fitted on a DataFrame checks the column names

        frame = pd.DataFrame(x, columns=list(self.feature_names))
        for name, dtype in self.categories.items():
            # masking and sampling may produce codes between categories: the nearest one in
            # range (-1, a missing value in X, stays missing)
            values = frame[name].to_numpy()
            codes = np.where(values == -1, -1,
                             np.clip(np.rint(values), 0, len(dtype.categories) - 1))
            frame[name] = pd.Categorical.from_codes(codes.astype(np.int64), dtype=dtype)
        return frame

    def _call(self, x: np.ndarray) -> Any:
        return self._select(getattr(self.estimator, self.response)(self._frame(x)))

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The response method's outputs, float64 (n, n_outputs)."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        size = batch_size or ESTIMATOR_BATCH_ROWS
        chunks = [as_output_matrix(self._call(x[part]), part.stop - part.start)
                  for part in batches(len(x), size)]
        outputs = require_finite(np.concatenate(chunks, axis=0), self.description, "outputs")
        self._n_outputs = outputs.shape[1]
        return outputs

    def gradient(
        self, x: np.ndarray, target: np.ndarray, batch_size: int | None = None
    ) -> np.ndarray:
        """Always fails: estimators are not differentiable here."""
        raise ModelHasNoGradientError(self.no_gradient_message())

    def no_gradient_message(self) -> str:
        """Why gradient methods cannot explain an estimator, and what to use."""
        return (f"{self.description} is a scikit-learn estimator, which has no gradient, so "
                f"gradient-based methods cannot explain it; {MODEL_AGNOSTIC_ADVICE}.")

    def check_input_shape(self, sample_shape: tuple[int, ...]) -> None:
        """Estimators take (n, n_features_in_) arrays."""
        if len(sample_shape) != 1:
            raise InvalidArgument(
                f"{self.description} takes 2-D input (n_samples, n_features); X has samples of "
                f"shape {sample_shape}."
            )
        if self.n_features is not None and sample_shape[0] != self.n_features:
            raise InvalidArgument(
                f"X has {sample_shape[0]} features but the {type(self.estimator).__name__} was "
                f"fitted on {self.n_features}."
            )

    def declared_outputs(self) -> int | None:
        """Outputs are known only once the estimator has been called."""
        return None

    def check_feature_names(self, names: tuple[str, ...], from_frame: bool) -> None:
        """A DataFrame's columns must be the ones the estimator was fitted on, in order."""
        if not from_frame or self.feature_names is None or names == self.feature_names:
            return
        raise InvalidArgument(
            f"X's columns {list(names)} differ from the columns the "
            f"{type(self.estimator).__name__} was fitted on {list(self.feature_names)}; select "
            f"them in that order: X[{list(self.feature_names)}]."
        )

    # -- identity --------------------------------------------------------------------------
    def fingerprint(self) -> str | None:
        """Digest of the estimator's pickled parameters and fitted state (None if unpicklable)."""
        try:
            payload = pickle.dumps(self.estimator, protocol=4)
        except Exception:  # lambdas and other unpicklable parts: keyed by identity instead
            return None
        categories = repr([(name, list(map(str, dtype.categories)), bool(dtype.ordered))
                           for name, dtype in self.categories.items()])
        digest = hashlib.blake2b(payload + categories.encode(), digest_size=16).hexdigest()
        return f"sklearn:{type(self.estimator).__qualname__}:{self.response}:{digest}"
