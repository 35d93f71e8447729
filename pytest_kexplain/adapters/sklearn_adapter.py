"""Adapter for scikit-learn estimators (and look-alikes) passed directly.

Which method is explained, as a user of scikit-learn expects:

- a classifier: ``predict_proba`` (one output per class, labelled by ``classes_``); without
  it (``SVC(probability=False)``, ``RidgeClassifier``) ``decision_function``, a binary one's
  score ``z`` (favouring ``classes_[1]``) seen as ``[-z, z]`` labelled ``classes_``;
- anything else (regressors, pipelines ending in one): ``predict``.

To explain another method, pass the bound method itself (``explain(clf.decision_function,
X)``). Estimators have no gradient: the model-agnostic methods explain them.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pytest_kexplain.adapters.base import batches, require_finite
from pytest_kexplain.adapters.binary import LOGIT
from pytest_kexplain.adapters.missing import estimator_refusal
from pytest_kexplain.adapters.multi_io import (
    InputLayout,
    OutputChoice,
    SelectsRawOutput,
    resolve_output,
)
from pytest_kexplain.adapters.outputs import as_output_matrix
from pytest_kexplain.errors import MODEL_AGNOSTIC_ADVICE, InvalidArgument, ModelHasNoGradientError

#: rows per estimator call: estimators are vectorised, Python overhead is per call
ESTIMATOR_BATCH_ROWS = 65536
RESPONSE_METHODS = ("predict_proba", "decision_function", "predict")


def is_sklearn_estimator(obj: Any) -> bool:
    """Whether obj looks like a scikit-learn estimator (checked without importing sklearn)."""
    return (not isinstance(obj, type) and hasattr(obj, "get_params") and hasattr(obj, "fit")
            and any(hasattr(obj, method) for method in RESPONSE_METHODS))


#: bound methods of an estimator that return scores, explained as the estimator itself is
BOUND_RESPONSES = ("predict_proba", "predict_log_proba", "decision_function", "predict",
                   "score_samples")


def bound_response(obj: Any) -> tuple[Any, str] | None:
    """(estimator, method name) when obj is a fitted estimator's bound scoring method
    (``clf.decision_function``): explained as the estimator, so a pipeline's string columns
    and feature_names_in_ work as they do for it. A classifier's predict (labels) is not."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", None)
    if owner is None or name not in BOUND_RESPONSES or not is_sklearn_estimator(owner):
        return None
    if name == "predict" and _is_classifier(owner):
        return None
    return owner, str(name)


def _is_classifier(estimator: Any) -> bool:
    try:
        from sklearn.base import is_classifier

        return bool(is_classifier(estimator))
    except Exception:  # a look-alike scikit-learn does not know
        return getattr(estimator, "_estimator_type", None) == "classifier"


def _estimator_type(estimator: Any) -> str | None:
    """'classifier', 'regressor', 'clusterer', 'outlier_detector' or None."""
    try:  # scikit-learn >= 1.6 keeps it in the estimator's tags
        from sklearn.utils import get_tags

        kind = get_tags(estimator).estimator_type
    except Exception:  # an older scikit-learn, or a look-alike it does not know
        kind = getattr(estimator, "_estimator_type", None)
    return None if kind is None else str(kind)


def response_method(estimator: Any) -> str:
    """The method to explain: predict_proba, else decision_function for classifiers; predict."""
    kind = _estimator_type(estimator)
    name = type(estimator).__name__
    if kind == "clusterer":
        transform = (f"the distance to each cluster centre, explain({name.lower()}.transform, "
                     "X, target=k), or " if hasattr(estimator, "transform") else "")
        raise InvalidArgument(
            f"{name} is a clusterer: its predict() returns cluster ids, which are labels, not "
            f"a score that features could be attributed to. Explain a score instead: "
            f"{transform}a classifier fitted on the cluster labels (its predict_proba).")
    if kind == "outlier_detector" and hasattr(estimator, "decision_function"):
        return "decision_function"  # the anomaly score; predict() gives -1/1 labels
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
    except (TypeError, AttributeError):  # not an estimator scikit-learn can inspect (no tags)
        return


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def fitted_categories(estimator: Any) -> dict[str, tuple[str, ...]]:
    """The categories each string column of the estimator's input was encoded with, read from
    its fitted encoders (a OneHotEncoder or OrdinalEncoder, inside Pipelines and
    ColumnTransformers): {column: categories}. Columns no encoder found are left out."""
    raw_columns = getattr(estimator, "feature_names_in_", None)
    if raw_columns is None:
        return {}
    known = {str(name) for name in raw_columns}
    found: dict[str, tuple[str, ...]] = {}

    def visit(obj: Any, columns: list[str] | None, depth: int = 0) -> None:
        if obj is None or isinstance(obj, str) or depth > 8:
            return
        categories = getattr(obj, "categories_", None)
        if isinstance(categories, list):
            names_in = getattr(obj, "feature_names_in_", None)
            names = [str(n) for n in names_in] if names_in is not None else columns
            if names is not None and len(names) == len(categories):
                for name, values in zip(names, categories):
                    kept = tuple(v for v in np.asarray(values, dtype=object) if not _missing(v))
                    if name in known and kept and all(isinstance(v, str) for v in kept):
                        found.setdefault(name, kept)
        for step in getattr(obj, "steps", None) or []:  # a Pipeline: steps see its columns
            visit(step[1], columns, depth + 1)
        for transformer in getattr(obj, "transformers_", None) or []:  # a ColumnTransformer
            selected = transformer[2]
            if isinstance(selected, str):
                selected = [selected]
            try:
                picked = [str(c) for c in selected] if all(
                    isinstance(c, str) for c in selected) else None
            except TypeError:  # a slice or a callable selector
                picked = None
            visit(transformer[1], picked, depth + 1)
        for attribute in ("best_estimator_", "estimator_"):  # a search, a wrapper
            visit(getattr(obj, attribute, None), columns, depth + 1)

    visit(estimator, [str(name) for name in raw_columns])
    return found


class SklearnAdapter(SelectsRawOutput):
    """Calls an estimator's response method in large batches; no gradient."""

    differentiable = False
    declared_inputs = None

    def __init__(self, estimator: Any, output: OutputChoice | None = None,
                 categories: Mapping[str, Any] | None = None, response: str | None = None):
        _check_fitted(estimator)
        #: pandas CategoricalDtype per category column of X: the estimator gets categories back
        self.categories = dict(categories or {})
        self.estimator = estimator
        #: the explained method: given (a bound method passed in) or the one a user expects
        self.response = response or response_method(estimator)
        self.output_choice = output
        self.output_head: str | None = None
        self.layout: InputLayout | None = None
        self.description = f"scikit-learn {type(estimator).__name__} ({self.response})"
        classes = getattr(estimator, "classes_", None)
        #: a multi-output classifier's classes_: one array of labels per output
        self._class_lists = tuple(tuple(str(label) for label in labels) for labels in classes) \
            if isinstance(classes, list) else None
        self._classes = None if classes is None or self._class_lists is not None \
            or np.ndim(classes) != 1 else tuple(str(label) for label in classes)
        names = getattr(estimator, "feature_names_in_", None)
        self.feature_names = None if names is None else tuple(str(name) for name in names)
        n_features = getattr(estimator, "n_features_in_", None)
        self.n_features = None if n_features is None else int(n_features)
        #: categories of the string columns, as the estimator's encoders were fitted
        self.fitted_categories = fitted_categories(estimator)
        self._selector: Any = None
        self._resolved = False
        self._n_outputs: int | None = None
        self._variants: dict[Any, SklearnAdapter] = {}
        if output is not None and self._class_lists is not None:  # named before any call
            self.output_head = self._check_output_choice(output)

    # -- labels and defaults ---------------------------------------------------------------
    @property
    def _pairwise(self) -> bool:
        """A decision function with one score per pair of classes (an SVC fitted with
        decision_function_shape='ovo' and more than two classes), not one per class."""
        final = self.estimator
        for _ in range(8):  # through pipelines and searches (their best estimator) to the SVC
            inner = (final.steps[-1][1] if hasattr(final, "steps")
                     else getattr(final, "best_estimator_", None))
            if inner is None:
                break
            final = inner
        classes = self._classes
        return (self.response == "decision_function" and classes is not None and len(classes) > 2
                and getattr(final, "decision_function_shape", None) == "ovo")

    def _pair_names(self) -> tuple[str, ...]:
        """'a vs b' per score of a pairwise decision function, in scikit-learn's order (a
        positive score favours a)."""
        classes = self._classes or ()
        return tuple(f"{a} vs {b}" for i, a in enumerate(classes) for b in classes[i + 1:])

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """classes_ when the explained outputs are one per class ('a vs b' per pair of
        classes for a pairwise decision function)."""
        if self._pairwise:
            return self._pair_names()
        classes = self._chosen_classes()
        if classes is None or self._n_outputs not in (None, len(classes)):
            return None
        return classes

    @property
    def default_target(self) -> int | None:
        """For a binary classifier's probabilities or decision function, the positive class
        (classes_[1])."""
        if self.output_view is not None:
            return 1
        classes = self._chosen_classes()
        if self.response == "predict_proba" and classes is not None and len(classes) == 2 \
                and (self._selector is None or self._class_lists is not None):
            return 1  # a multi-output classifier's binary output too
        return None

    @property
    def output_view(self) -> str | None:
        """'logit' for a binary classifier's decision function: its one score z favours
        classes_[1], and it is explained as the two units [-z, z] labelled classes_, so that
        either class and each row's own (z > 0: classes_[1]) can be explained, as a one-unit
        Keras logit with two class labels is (adapters/binary.py)."""
        classes = self._classes
        if self.response == "decision_function" and self._class_lists is None \
                and classes is not None and len(classes) == 2:
            return LOGIT
        return None

    def _chosen_classes(self) -> tuple[str, ...] | None:
        """classes_, or for a multi-output classifier the chosen output's classes (known
        from output= before the first call: its outputs are output_0, output_1, ...)."""
        if self._class_lists is None:
            return self._classes
        if isinstance(self._selector, int):
            return self._class_lists[self._selector]
        key = None if self.output_choice is None else self.output_choice.key
        names = [f"output_{k}" for k in range(len(self._class_lists))]
        if isinstance(key, str) and key in names:
            return self._class_lists[names.index(key)]
        if isinstance(key, (int, np.integer)) and -len(names) <= key < len(names):
            return self._class_lists[int(key)]
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
        self._check_output_choice(output)
        if output not in self._variants:
            self._variants[output] = SklearnAdapter(self.estimator, output, self.categories,
                                                    self.response)
        return self._variants[output]

    def with_categories(self, categories: Mapping[str, Any]) -> SklearnAdapter:
        """The adapter that hands X's category columns (pandas CategoricalDtype by column) to
        the estimator as categories again, as it was fitted, rather than as their codes."""
        if not categories or self.feature_names is None:
            return self
        # str(dtype) is 'category' for every CategoricalDtype: the key holds the categories
        key = ("categories", tuple((name, tuple(map(str, dtype.categories)), bool(dtype.ordered))
                                   for name, dtype in categories.items()))
        if key not in self._variants:
            self._variants[key] = SklearnAdapter(self.estimator, self.output_choice, categories,
                                                 self.response)
        return self._variants[key]

    def category_dtypes(self) -> dict[str, Any]:
        """pandas CategoricalDtype per string column whose fitted categories are known."""
        import pandas as pd

        return {name: pd.CategoricalDtype(list(values))
                for name, values in self.fitted_categories.items()}

    def frame_with_categories(self, frame: Any, name: str = "X") -> Any:
        """The DataFrame with its string (and category) columns as pandas categories: the
        categories the estimator's encoders were fitted with where known (an ordered category
        column in its own order), else the sorted values the column holds. A value the encoders
        were not fitted with is an error."""
        import pandas as pd

        from pytest_kexplain.inputs import holds_numbers_only, with_columns

        fitted = self.category_dtypes()
        converted = {}
        for column in frame.columns:
            series = frame[column]
            dtype = series.dtype
            is_category = str(dtype) == "category"
            if not is_category and (getattr(dtype, "kind", "O") in "biufcmM"
                                    or holds_numbers_only(series)):
                continue
            values = series.astype(object) if is_category else series
            target = fitted.get(str(column))
            if target is None:
                if is_category:
                    continue
                present = sorted({str(v) for v in values if not _missing(v) and v is not pd.NA})
                target = pd.CategoricalDtype(present)
            else:
                unknown = sorted({str(v) for v in values if not _missing(v) and v is not pd.NA}
                                 - set(target.categories))
                if unknown:
                    raise InvalidArgument(
                        f"{name} column {str(column)!r} holds {', '.join(map(repr, unknown[:5]))}"
                        f", which the {type(self.estimator).__name__} was not fitted with (its "
                        f"categories: {', '.join(map(repr, target.categories[:10]))}); "
                        "explanations replace a category by another one the model knows: drop "
                        "those rows or map them to a known category.")
                if is_category and dtype.ordered:
                    # an ordinal column keeps its declared order, which sweeps (assert_monotonic)
                    # follow, holding only categories the encoders know
                    known = set(target.categories)
                    target = pd.CategoricalDtype(
                        [c for c in dtype.categories if str(c) in known], ordered=True)
            converted[column] = pd.Categorical(values, dtype=target)
        return with_columns(frame, converted)

    def missing_values_refusal(self, columns: Sequence[int], names: Sequence[str]) -> str | None:
        """None when the estimator accepts NaN in these columns of X (its scikit-learn tags,
        a pipeline followed to the step that imputes them), else why it does not."""
        return estimator_refusal(self.estimator, columns, self.feature_names or names)

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
        raw = getattr(self.estimator, self.response)(self._frame(x))
        if self.output_choice is not None:  # every output finite, not only the explained one
            for k, head in enumerate(raw if isinstance(raw, list) else [raw]):
                require_finite(np.asarray(head, dtype=np.float64), self.description,
                               "outputs" if not isinstance(raw, list) else f"output 'output_{k}'")
        return self._select(self._outputs_as_heads(raw))

    def _outputs_as_heads(self, raw: Any) -> Any:
        """A multi-output regressor's (n, k) predictions as k outputs when output= picks one:
        scikit-learn calls its targets outputs (n_outputs_), so output=1 (or 'output_1') is the
        second target's column, as target=1 is."""
        if self.output_choice is None or self.response != "predict" \
                or not isinstance(raw, np.ndarray) or raw.ndim != 2 or raw.shape[1] < 2:
            return raw
        return [raw[:, k] for k in range(raw.shape[1])]

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The response method's outputs, float64 (n, n_outputs)."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        size = batch_size or ESTIMATOR_BATCH_ROWS
        chunks = [as_output_matrix(self._call(x[part]), part.stop - part.start)
                  for part in batches(len(x), size)]
        outputs = require_finite(np.concatenate(chunks, axis=0), self.description, "outputs")
        if self.output_view is not None and outputs.shape[1] == 1:
            outputs = np.concatenate([-outputs, outputs], axis=1)  # [-z, z]: classes_ in order
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
        """Units of the explained output, when a classifier's classes_ tell them before any
        call (so a wrong label or class_names fails first); else None, known after a call."""
        classes = self._chosen_classes()
        if classes is None or (self._class_lists is not None and self.output_choice is None):
            return None
        if self.response == "predict_proba":
            return len(classes)
        if self._pairwise:
            return len(self._pair_names())
        if self.response == "decision_function" and self._class_lists is None:
            return len(classes)  # a binary one is seen as [-z, z]
        return None

    def check_output_chosen(self) -> None:
        """A multi-output classifier needs output=, said before any call (its classes_ list
        the outputs)."""
        if self.output_choice is None and self._class_lists is not None \
                and self.response == "predict_proba":
            resolve_output([np.zeros((1, len(c))) for c in self._class_lists], None,
                           self.description)

    def _check_output_choice(self, output: OutputChoice) -> str | None:
        """An output= that a classifier's classes_ show does not exist fails before any call
        (the outputs of a regressor are known from its first call); the chosen output's name."""
        if self.response != "predict_proba":
            return None
        if self._class_lists is not None:
            return resolve_output([np.zeros((1, len(c))) for c in self._class_lists], output,
                                  self.description)[1]
        if self._classes is not None:
            resolve_output(np.zeros((1, len(self._classes))), output, self.description)
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
