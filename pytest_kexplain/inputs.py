"""Turn user data (NumPy arrays, pandas DataFrames) into validated float arrays."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from pytest_kexplain.adapters.multi_io import NAME_SEPARATOR, InputLayout, InputSpec
from pytest_kexplain.errors import InvalidArgument, InvalidArgumentType, count

#: a model's declared inputs and whether it takes them as a dict (None: not declared)
DeclaredInputs = tuple[tuple[InputSpec, ...], bool] | None

#: a model's verdict on NaN in the given columns (positions, all feature names): None when it
#: accepts them, else the sentence saying why not (added to the usage error)
MissingVerdict = Callable[[Sequence[int], Sequence[str]], "str | None"]


def judged_later(columns: Sequence[int], feature_names: Sequence[str]) -> str | None:
    """The verdict for data read before the model is bound (names, shapes): NaN passes here,
    and explain() judges it against the model before any model call."""
    return None


@dataclass(frozen=True)
class PreparedInput:
    """Validated input data: a float64 array of shape (n, *feature_shape) and feature names.

    For a model with several inputs, ``array`` is (n, d): each input's samples flattened and
    concatenated in the model's input order, as ``layout`` describes; feature names are
    qualified by the input's name (``num:income``).
    """

    array: np.ndarray
    feature_names: tuple[str, ...]
    layout: InputLayout | None = None
    #: a DataFrame's category columns and their pandas CategoricalDtype: the codes in
    #: ``array`` index these categories (a background is encoded with the same ones); with
    #: several inputs the columns are named "input:column"
    categories: tuple[tuple[str, Any], ...] = ()
    #: the flat position of every category column and its labels (what the codes stand for)
    category_columns: tuple[tuple[int, tuple[str, ...]], ...] = ()
    #: the model's verdict on missing values (NaN) in its input; None: NaN is refused. Data
    #: prepared for the same model (a background, transformed rows) is judged by it too
    missing: MissingVerdict | None = field(default=None, compare=False, repr=False)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.array.shape[1:])


def is_dataframe(obj: Any) -> bool:
    """Whether obj looks like a pandas DataFrame (checked without importing pandas)."""
    return hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "dtypes")


def is_series(obj: Any) -> bool:
    """Whether obj looks like a pandas Series, subclasses included (checked without importing
    pandas): a column with an index that becomes a one-column DataFrame by to_frame()."""
    return hasattr(obj, "to_frame") and hasattr(obj, "index") and not is_dataframe(obj)


def default_feature_names(feature_shape: tuple[int, ...]) -> tuple[str, ...]:
    """Names for unnamed features: x0, x1, ... for tabular data, x[i,j,k] for larger ranks."""
    if len(feature_shape) == 1:
        return tuple(f"x{i}" for i in range(feature_shape[0]))
    return tuple("x[" + ",".join(map(str, idx)) + "]" for idx in np.ndindex(*feature_shape))


def _check_unique_columns(frame: Any, name: str) -> None:
    labels = [str(c) for c in frame.columns]
    positions: dict[str, list[int]] = {}
    for position, label in enumerate(labels):
        positions.setdefault(label, []).append(position)
    repeated = {label: where for label, where in positions.items() if len(where) > 1}
    if repeated:
        shown = "; ".join(f"{label!r} at columns {', '.join(map(str, where))}"
                          for label, where in list(repeated.items())[:5])
        raise InvalidArgument(
            f"{name} has duplicate column names ({shown}); every feature needs its own name: "
            "rename the columns (e.g. df.columns = [...]) or drop the duplicates.")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) \
        or type(value).__name__ in ("NAType", "NaTType")


def holds_numbers_only(series: Any) -> bool:
    """Whether an object column holds numbers (or missing values) and nothing else."""
    return all(_is_missing(v) or (isinstance(v, (int, float, np.number))
                                  and not isinstance(v, (complex, np.complexfloating)))
               for v in series)


def _dataframe_to_array(frame: Any, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    _check_unique_columns(frame, name)
    columns = []
    for column_name, dtype in zip(frame.columns, frame.dtypes):
        series = frame[column_name]
        kind = getattr(dtype, "kind", "O")
        if str(dtype) == "category":
            # Ordered codes keep an ordinal feature's value order; unseen values stay -1.
            columns.append(np.asarray(series.cat.codes, dtype=np.float64))
        elif kind in "biuf":
            columns.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
        elif kind == "O" and holds_numbers_only(series):
            # an object column of Python numbers (after an apply or a concat): its values
            columns.append(np.array([np.nan if _is_missing(v) else float(v) for v in series],
                                    dtype=np.float64))
        else:
            raise InvalidArgument(
                f"{name} column {column_name!r} has non-numeric dtype {dtype}; encode it as "
                "numbers the way the model was trained, or make it a pandas 'category' column "
                f"({name}.astype({{{str(column_name)!r}: 'category'}})): explanations mask its "
                "category codes, and a scikit-learn estimator fitted on the strings gets "
                "them back as categories."
            )
    array = np.stack(columns, axis=1) if columns else np.empty((len(frame), 0))
    return array, tuple(str(c) for c in frame.columns)


def _check_feature_names(names: Sequence[str], n_features: int, name: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise InvalidArgument("feature_names must be a list of names, not a single string.")
    if isinstance(names, (set, frozenset, Mapping)) or type(names).__name__ in (
            "dict_keys", "dict_values"):
        raise InvalidArgumentType(
            f"feature_names must be an ordered list of names, got a {type(names).__name__}, "
            "whose order is not the columns' order; pass a list, one name per column in order.")
    names = tuple(str(n) for n in names)
    if len(names) != n_features:
        raise InvalidArgument(
            f"feature_names has {count(len(names), 'name')} but {name} has "
            f"{count(n_features, 'feature')}; "
            "give exactly one name per feature (column)."
        )
    counts = Counter(names)
    duplicates = sorted(n for n, count in counts.items() if count > 1)
    if duplicates:
        raise InvalidArgument(f"feature_names must be unique; repeated: {', '.join(duplicates)}.")
    return names


def check_finite(array: np.ndarray, name: str, feature_names: Sequence[str],
                 missing: MissingVerdict | None = None) -> np.ndarray:
    """The array, its NaN made one bit pattern when the model accepts missing values there;
    else an InvalidArgument naming the first row and column holding NaN or infinity."""
    finite = np.isfinite(array)
    if finite.all():
        return array
    flat = finite.reshape(len(array), -1)
    values = array.reshape(len(array), -1)
    advice = ""
    infinite = np.isinf(values)
    if not infinite.any() and missing is not None:
        columns = [int(c) for c in np.flatnonzero(np.isnan(values).any(axis=0))]
        refusal = missing(columns, feature_names)
        if refusal is None:  # -nan and NaN payloads read alike: digests and bytes are stable
            return np.where(np.isnan(array), np.nan, array)
        advice = " " + refusal
    bad = infinite if infinite.any() else ~flat
    row, column = (int(i) for i in np.argwhere(bad)[0])
    value = values[row, column]
    bad_rows = int((~flat).any(axis=1).sum())
    raise InvalidArgument(
        f"{name} contains {value} at row {row}, column {feature_names[column]!r} "
        f"(feature index {column}); {bad_rows} row(s) are affected. Explanations of "
        f"non-finite inputs are undefined: drop or impute those rows first.{advice}"
    )


def is_multi_input(X: Any, declared: DeclaredInputs = None) -> bool:
    """Whether X gives several named or listed inputs rather than one array.

    A dict always does; a list or tuple does when the model declares several inputs (for a
    single-input model it stays a nested list of numbers).
    """
    if isinstance(X, Mapping):
        return True
    return (isinstance(X, (list, tuple)) and declared is not None and len(declared[0]) > 1)


def _flat_rows_of_inputs(X: Any, declared: DeclaredInputs) -> list[np.ndarray] | None:
    """X's columns cut into the model's inputs, when X holds flat rows of several inputs.

    ``Explanation.data`` of a model with several inputs is such an array: each row is every
    input's sample flattened and concatenated, so it can be explained or checked again.
    """
    if declared is None or len(declared[0]) < 2 or not isinstance(X, np.ndarray) or X.ndim != 2:
        return None
    shapes: list[Any] = [spec.shape for spec in declared[0]]
    if any(shape is None or any(d is None for d in shape) for shape in shapes):
        return None
    sizes = [int(np.prod(shape)) for shape in shapes]
    if X.shape[1] != sum(sizes):
        return None
    stops = np.cumsum(sizes)
    return [X[:, stop - size:stop].reshape(len(X), *shape)
            for stop, size, shape in zip(stops, sizes, shapes)]


#: how to turn a data pipeline into the rows explain() takes, by the pipeline's kind
_PIPELINE_ADVICE = {
    "tf.data.Dataset": "np.concatenate([x for x, y in ds.take(8).as_numpy_iterator()]) for "
                       "batches of (features, labels), np.concatenate(list(ds.take(8)"
                       ".as_numpy_iterator())) for batches of features",
    "torch DataLoader": "torch.cat([x for x, y in loader]).numpy() (or the tensors the "
                        "loader's dataset holds, e.g. dataset.tensors[0])",
    "torch Dataset": "torch.stack([dataset[i][0] for i in range(200)]).numpy() (a "
                     "TensorDataset holds them as dataset.tensors[0])",
    "keras PyDataset": "np.concatenate([dataset[i][0] for i in range(len(dataset))])",
    "iterator": "np.asarray(list(rows)) or np.concatenate(list(batches))",
}


def _pipeline_kind(X: Any) -> str | None:
    """The kind of data pipeline X is (a dataset, a loader, a generator), None for data."""
    module = type(X).__module__ or ""
    bases = {cls.__name__ for cls in type(X).__mro__}
    if module.startswith("tensorflow") and hasattr(X, "as_numpy_iterator"):
        return "tf.data.Dataset"
    if module.startswith("torch") and bases & {"DataLoader", "Dataset", "IterableDataset"}:
        return "torch DataLoader" if "DataLoader" in bases else "torch Dataset"
    if "PyDataset" in bases:
        return "keras PyDataset"
    if isinstance(X, Iterator):
        return "iterator"
    return None


def _reject_pipeline(X: Any, name: str) -> None:
    kind = _pipeline_kind(X)
    if kind is None:
        return
    raise InvalidArgumentType(
        f"{name} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, but explanations and checks "
        "take the rows themselves: a fixed set of samples (a pipeline may shuffle, repeat or "
        "never end). Pass an array, a "
        "DataFrame, a tensor (or a dict of them for a model with several inputs) holding a "
        f"few hundred rows, e.g. {name} = {_PIPELINE_ADVICE[kind]}.")


def _own_frozen_copy(array: np.ndarray, source: Any) -> np.ndarray:
    """array made read-only, copied first when it is (a view of) the caller's own data: freezing
    the caller's array would make their next in-place edit fail, and a view would let that
    edit change the explanation's data afterwards."""
    if array.flags.writeable and (array is source or not array.flags.owndata):
        array = array.copy()
    array.setflags(write=False)
    return array


def _numeric_array(X: Any, name: str) -> np.ndarray:
    """X as a float64 array: numbers only (strings, complex and masked values are errors)."""
    if hasattr(X, "detach") and hasattr(X, "cpu") and (type(X).__module__ or "").startswith(
            "torch"):
        X = X.detach().cpu()  # a tensor that requires grad or lives on a GPU
        if str(X.dtype) == "torch.bfloat16":  # which NumPy has no type for: exact in float32
            X = X.float()
        X = X.numpy()
    if np.ma.isMaskedArray(X):
        masked = int(np.ma.getmaskarray(X).sum())
        if masked:
            raise InvalidArgument(
                f"{name} is a masked array with {masked} masked value(s); explanations would "
                f"read the values under the mask. Fill them ({name}.filled(value)) or drop "
                "those rows first.")
        X = np.ma.getdata(X)
    try:
        raw = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{name} could not be converted to a float array: {exc}") from exc
    text = raw.dtype.kind in "USa"
    if raw.dtype.kind == "O":
        text = any(isinstance(value, (str, bytes)) for value in raw.flat)
    if text:
        first = next(value for value in raw.flat if isinstance(value, (str, bytes, np.str_,
                                                                       np.bytes_)))
        raise InvalidArgumentType(
            f"{name} holds strings ({str(first)!r}), not numbers. Encode them as numbers the way "
            "the model was trained; for a scikit-learn pipeline that encodes string columns "
            "itself, pass a pandas DataFrame with those columns (as its fit got them).")
    if np.iscomplexobj(raw):
        raise InvalidArgumentType(
            f"{name} holds complex numbers (dtype {raw.dtype}); explanations take real "
            f"inputs: pass {name}.real, or the magnitude np.abs({name}), as the model reads it.")
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{name} could not be converted to a float array: {exc}") from exc


def prepare_input(
    X: Any, feature_names: Sequence[str] | Mapping[str, Sequence[str]] | None = None, *,
    name: str = "X", declared: DeclaredInputs = None, missing: MissingVerdict | None = None,
) -> PreparedInput:
    """Validate X (array, DataFrame, or a dict or list of them per input) as float64 with names.

    NaN is refused unless `missing` (the model's verdict) accepts it in the columns holding it;
    infinity always is."""
    if X is None:
        raise InvalidArgument(f"{name} is None; pass the samples to explain as an array or DataFrame.")
    _reject_pipeline(X, name)
    if is_multi_input(X, declared):
        return _prepare_multi_input(X, feature_names, name, declared, missing)
    flat_parts = _flat_rows_of_inputs(X, declared)
    if flat_parts is not None:
        return _prepare_multi_input(flat_parts, feature_names, name, declared, missing)
    if isinstance(feature_names, Mapping):
        raise InvalidArgument(
            "feature_names is a dict (names per input), but X is a single array; give a list "
            "of names, or pass X as a dict of arrays keyed by the model's input names."
        )
    frame_names: tuple[str, ...] | None = None
    if is_dataframe(X):
        array, frame_names = _dataframe_to_array(X, name)
    else:
        array = _numeric_array(X, name)
    if array.ndim < 2:
        if is_series(X):
            hint = (f"{name} is a pandas Series: for one row of a DataFrame pass df.iloc[[i]] "
                    f"(a DataFrame, which keeps the column names), for one feature "
                    f"series.to_frame().")
        else:
            hint = (f"For one sample use {name}[None]; for samples of a one-feature model, "
                    f"{name}[:, None].")
        raise InvalidArgument(
            f"{name} must have a batch dimension: shape (n_samples, n_features) or "
            f"(n_samples, *sample_shape), got shape {array.shape}. {hint}"
        )
    if array.shape[0] == 0:
        raise InvalidArgument(f"{name} is empty (0 samples); give at least one sample to explain.")
    n_features = int(np.prod(array.shape[1:]))
    if feature_names is not None:
        names = _check_feature_names(feature_names, n_features, name)
    elif frame_names is not None:
        names = _check_feature_names(frame_names, n_features, name)
    else:
        names = default_feature_names(tuple(array.shape[1:]))
    array = check_finite(array, name, names, missing)
    array = _own_frozen_copy(np.ascontiguousarray(array), X)
    categories = tuple((str(column), dtype) for column, dtype in X.dtypes.items()
                       if str(dtype) == "category") if frame_names is not None else ()
    category_columns = tuple(
        (position, tuple(str(label) for label in cast(Any, dtype).categories))
        for position, dtype in enumerate(X.dtypes) if str(dtype) == "category"
    ) if frame_names is not None else ()
    return PreparedInput(array=array, feature_names=names, categories=categories,
                         category_columns=category_columns, missing=missing)


def prepare_background(
    background: Any, reference: PreparedInput, *, name: str = "background"
) -> np.ndarray | None:
    """Validate background data against X's feature shape; None stays None."""
    if background is None:
        return None
    if reference.layout is not None:
        return _prepare_multi_background(background, reference, name)
    if reference.categories and is_dataframe(background):
        background = encode_categories(background, dict(reference.categories), name)
    prepared = prepare_input(background, None, name=name, missing=reference.missing)
    if is_dataframe(background) and tuple(map(str, background.columns)) != reference.feature_names:
        raise InvalidArgument(
            f"{name} columns {list(map(str, background.columns))} differ from X's "
            f"feature names {list(reference.feature_names)}."
        )
    if prepared.feature_shape != reference.feature_shape:
        raise InvalidArgument(
            f"{name} has sample shape {prepared.feature_shape} but X has "
            f"{reference.feature_shape}; both must describe the same features."
        )
    return prepared.array


def strings_as_categories(frame: Any) -> Any:
    """A DataFrame's string columns as pandas categories (of the values they hold); anything
    else unchanged. Generated rows draw such a column's values from those it holds."""
    if not is_dataframe(frame):
        return frame
    text = [column for column, dtype in zip(frame.columns, frame.dtypes)
            if str(dtype) != "category" and getattr(dtype, "kind", "O") == "O"
            and not holds_numbers_only(frame[column])
            and all(_is_missing(v) or isinstance(v, str) for v in frame[column])]
    return frame.astype({column: "category" for column in text}) if text else frame


def encode_categories(frame: Any, dtypes: Mapping[str, Any], name: str) -> Any:
    """The DataFrame with the named columns as these pandas categories (X's), so that its
    category codes mean what X's mean; a value that is not one of them is an error."""
    import pandas as pd

    converted = {}
    for column in frame.columns:
        dtype = dtypes.get(str(column))
        if dtype is None or _same_categories(frame[column].dtype, dtype):
            continue
        values = frame[column].astype(object)
        present = {v for v in values if not _is_missing(v)}
        unknown = sorted(map(str, present - set(dtype.categories)))
        if unknown:
            raise InvalidArgument(
                f"{name} column {str(column)!r} holds {', '.join(map(repr, unknown[:5]))}, which "
                f"is not a category of X's column (its categories: "
                f"{', '.join(map(repr, list(dtype.categories)[:10]))}); give both the same "
                f"categories, e.g. X[{str(column)!r}] = X[{str(column)!r}].astype("
                "pd.CategoricalDtype(all_values)) and the same for the background.")
        converted[column] = pd.Categorical(values, dtype=dtype)
    return with_columns(frame, converted)


def _same_categories(dtype: Any, reference: Any) -> bool:
    """Whether a column's dtype has the reference's categories in the same order: pandas
    calls unordered categoricals equal in any order, but their codes then mean other values."""
    return (str(dtype) == "category" and dtype == reference
            and list(dtype.categories) == list(reference.categories))


def with_columns(frame: Any, columns: Mapping[Any, Any]) -> Any:
    """A copy of the DataFrame with these columns replaced (the frame itself when none is)."""
    if not columns:
        return frame
    frame = frame.copy()
    for column, values in columns.items():
        frame[column] = values
    return frame


#: where the names of an explanation's rows come from, for the unknown-name error, by row kind
NAME_SOURCES = {
    "feature": "(Names come from feature_names=, or a DataFrame's columns; unnamed features are "
               "x0, x1, ...)",
    "token": "(With vocabulary=, the checks name token strings.)",
    "group": "(With groups=, the checks name groups: a dict's keys, Grid's patch(row,col), "
             "'timesteps' t0, t1, ..., a label mask's 'region <label>'.)",
    "feature or group": "(With groups=, the checks name groups by their keys, and the columns "
                        "no group holds by their own names.)",
    "feature or token": "(With vocabulary=, the checks name an input's tokens 'input:token' and "
                        "other inputs' features 'input:feature'.)",
}


class OneInputNames(tuple[str, ...]):
    """The names of an explanation that covers one input of a model with several (Grad-CAM
    maps its layer onto the one image input it reads); a lookup of another input's feature
    says so rather than calling it misspelled."""

    explained_input: str
    unexplained: dict[str, str]  # another input's feature (or group) -> that input
    why: str  # e.g. "method='gradcam' maps layer 'conv' onto input 'image' alone"

    def __new__(cls, names: Sequence[str], explained_input: str, unexplained: dict[str, str],
                why: str) -> OneInputNames:
        made = super().__new__(cls, names)
        made.explained_input, made.unexplained, made.why = explained_input, unexplained, why
        return made


def _unexplained_input(feature_names: Sequence[str], feature: str, argument: str) -> None:
    """Raise the usage error for a feature of an input the explanation does not cover."""
    if not isinstance(feature_names, OneInputNames):
        return
    other = feature_names.unexplained.get(feature)
    if other is None and NAME_SEPARATOR in feature:
        prefix = feature.split(NAME_SEPARATOR, 1)[0]
        other = prefix if prefix in set(feature_names.unexplained.values()) else None
    if other is None:
        return
    raise InvalidArgument(
        f"{argument} {feature!r} is a feature of input {other!r}, which this check's explanation "
        f"does not cover: {feature_names.why}, so it holds the features (or groups) of input "
        f"{feature_names.explained_input!r} only. Name features of input "
        f"{feature_names.explained_input!r}, or check {feature!r} with a method that "
        "attributes every input (integrated_gradients, shap, occlusion or lime).")


def feature_index(feature_names: Sequence[str], feature: Any, *, argument: str = "feature",
                  kind: str = "feature") -> int:
    """Position of a named feature; unknown names suggest the closest existing ones. `kind`
    says what the names are ("feature", "group", "token", "feature or group", ...)."""
    __tracebackhide__ = True
    if not isinstance(feature, str):
        if not isinstance(feature, (bool, float)) and str(feature) in feature_names:
            # a DataFrame column labelled 0 (or ('a', 'b')) is the feature named '0'
            return list(feature_names).index(str(feature))
        raise InvalidArgumentType(
            f"{argument} must be a feature name (str), got {type(feature).__name__} {feature!r}."
        )
    try:
        return list(feature_names).index(feature)
    except ValueError:
        pass
    _unexplained_input(feature_names, feature, argument)
    close = difflib.get_close_matches(feature, list(feature_names), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    qualified = [name for name in feature_names if name.endswith(NAME_SEPARATOR + feature)]
    if qualified:  # an input's feature (or token) named without its input
        hint = (f" Did you mean {' or '.join(map(repr, qualified[:3]))}? The features of a "
                "model with several inputs are named 'input:feature'.")
    shown = ", ".join(feature_names[:12]) + (", ..." if len(feature_names) > 12 else "")
    kind = kind if kind in NAME_SOURCES else "feature"
    plural = " or ".join(f"{word}s" for word in kind.split(" or "))
    raise InvalidArgument(
        f"{argument} {feature!r} is not a {kind} of X.{hint} The {plural} are: {shown}. "
        + NAME_SOURCES[kind]
    )


def feature_indices(
    feature_names: Sequence[str], features: Any, *, argument: str = "features",
    kind: str = "feature",
) -> list[int]:
    """Positions of a non-empty list of distinct feature names (`kind` as feature_index's)."""
    __tracebackhide__ = True
    if isinstance(features, str):
        features = [features]
    if not isinstance(features, Sequence) or isinstance(features, (bytes, bytearray)):
        raise InvalidArgumentType(
            f"{argument} must be a list of feature names, got {type(features).__name__}."
        )
    if len(features) == 0:
        raise InvalidArgument(f"{argument} is empty; name at least one feature.")
    indices = []
    for feature in features:  # a loop, not a comprehension, so the frame stays hidden
        indices.append(feature_index(feature_names, feature, argument=f"{argument} entry",
                                     kind=kind))
    repeated = sorted({feature_names[i] for i in indices if indices.count(i) > 1})
    if repeated:
        raise InvalidArgument(f"{argument} names a feature more than once: {', '.join(repeated)}.")
    return indices


def require_tabular(array: np.ndarray, check: str) -> None:
    """Checks that move single features need (n_samples, n_features) data."""
    __tracebackhide__ = True
    if array.ndim != 2:
        raise InvalidArgument(
            f"{check} works on tabular data of shape (n_samples, n_features); X has shape "
            f"{array.shape}."
        )


# -- the space of valid rows (observed ranges and constraints), used by generated rows --------

FLOAT, INTEGER, CATEGORICAL, FIXED = "float", "integer", "categorical", "fixed"


@dataclass(frozen=True)
class FeatureBounds:
    """The observed range of one feature and the kind of values it takes.

    Values are numbers as the model sees them: a categorical feature's values are its
    category codes, in category order (so an ordered category keeps its order). A `fixed`
    feature (constant in X, or fixed by the user) always takes the value `low`.
    """

    name: str
    low: float
    high: float
    kind: str
    observed: tuple[float, ...] = ()
    categories: tuple[Any, ...] = ()
    #: whether X holds missing values (NaN) in this column; the range is that of the others
    missing: bool = False

    def grid(self, points: int) -> np.ndarray:
        """Up to `points` increasing values spanning the range (every value if fewer exist)."""
        if self.kind == CATEGORICAL:
            candidates = np.asarray(self.observed)
            if len(candidates) <= points:
                return candidates
            picks = np.linspace(0, len(candidates) - 1, points).round().astype(int)
            return candidates[np.unique(picks)]
        if self.kind == FIXED:
            return np.array([self.low])
        grid = np.linspace(self.low, self.high, points)
        if self.kind == INTEGER:
            if self.high - self.low + 1 <= points:
                return np.arange(self.low, self.high + 1)
            grid = np.unique(grid.round())
        return np.unique(grid)

    def label(self, value: float) -> str:
        """How to show a value: a category's label, an integer without decimals."""
        if np.isnan(value):
            return "NaN"
        if self.kind == CATEGORICAL and 0 <= int(value) < len(self.categories):
            return str(self.categories[int(value)])
        if self.kind == INTEGER or float(value).is_integer():
            return str(int(value))
        from pytest_kexplain.assertions.messages import number

        return number(value)


@dataclass(frozen=True)
class RowSpace:
    """Where valid rows live: each feature's bounds and the one-hot groups tying columns together.

    In each group (column indices) exactly one column is 1 and the others 0; a generated
    row picks one of the group's columns that are 1 somewhere in X.
    """

    features: tuple[FeatureBounds, ...]
    groups: tuple[tuple[int, ...], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The feature names, in column order."""
        return tuple(f.name for f in self.features)

    def group_of(self, column: int) -> tuple[int, ...] | None:
        """The one-hot group holding a column, if any."""
        return next((group for group in self.groups if column in group), None)

    def observed_in_group(self, group: tuple[int, ...], x: np.ndarray) -> tuple[int, ...]:
        """The group's columns that are 1 in some row of x."""
        return tuple(c for c in group if np.any(x[:, c] == 1))


def _kind(values: np.ndarray, dtype: Any) -> str:
    if str(dtype) == "category":
        return CATEGORICAL
    if getattr(dtype, "kind", "f") in "biu" or np.all(values == np.round(values)):
        return INTEGER
    return FLOAT


def _names_to_columns(names: Any, feature_names: Sequence[str], argument: str) -> list[int]:
    return feature_indices(feature_names, list(names), argument=argument)


def feature_bounds(
    X: Any, feature_names: Sequence[str] | None = None, *, integer: Sequence[str] = (),
    fixed: Sequence[str] | Mapping[str, float] | None = None,
) -> tuple[FeatureBounds, ...]:
    """Observed bounds of each column of a 2-D array or DataFrame.

    Columns constant in X are `fixed` at their value; `integer` names columns to draw as
    integers (integer-valued columns are detected anyway); `fixed` names columns held at
    their most common value in X, or maps names to the value to hold them at. Missing values
    (NaN) are left out of the ranges and kinds; a column missing in every row is fixed at NaN.
    """
    X = strings_as_categories(X)
    prepared = prepare_input(X, feature_names, missing=judged_later)
    require_tabular(prepared.array, "feature_bounds")
    names = prepared.feature_names
    forced_integer = set(_names_to_columns(integer, names, "integer")) if integer else set()
    fixed_values: dict[int, float] = {}
    if fixed is not None:
        if isinstance(fixed, str):
            fixed = [fixed]
        columns = _names_to_columns(list(fixed), names, "fixed") if len(fixed) else []
        for column, name in zip(columns, fixed):
            if isinstance(fixed, Mapping):
                value = fixed[name]
                if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                        or not np.isfinite(value):
                    raise InvalidArgumentType(
                        f"fixed[{name!r}] must be a finite number, got {value!r}.")
                fixed_values[column] = float(value)
            else:
                values, counts = np.unique(prepared.array[:, column], return_counts=True)
                counts = np.where(np.isnan(values), -1, counts)  # a value rather than NaN
                fixed_values[column] = float(values[counts.argmax()])
    frame = X if is_dataframe(X) else None
    bounds = []
    for column, name in enumerate(names):
        values = prepared.array[:, column]
        absent = np.isnan(values)
        values = values[~absent]
        dtype = frame.dtypes.iloc[column] if frame is not None else values.dtype
        if not len(values):  # missing in every row: nothing to draw but NaN
            bounds.append(FeatureBounds(name, np.nan, np.nan, FIXED, missing=True))
            continue
        kind = _kind(values, dtype)
        categories: tuple[Any, ...] = ()
        observed: tuple[float, ...] = ()
        if kind == CATEGORICAL:
            categories = tuple(cast(Any, dtype).categories)
            values = values[values >= 0]  # -1 marks a missing category
            observed = tuple(float(v) for v in np.unique(values))
        low, high = float(values.min()), float(values.max())
        if column in forced_integer and kind == FLOAT:
            kind, low, high = INTEGER, float(np.ceil(low)), float(np.floor(high))
            if low > high:
                raise InvalidArgument(
                    f"integer column {name!r} has no integer value inside its observed range "
                    f"[{values.min()}, {values.max()}].")
        if column in fixed_values:
            kind, low = FIXED, fixed_values[column]
            high = low
        elif low == high and kind != CATEGORICAL:
            kind = FIXED
        bounds.append(FeatureBounds(name, low, high, kind, observed, categories,
                                    bool(absent.any())))
    return tuple(bounds)


def detect_one_hot_groups(array: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Groups of 0/1 columns of which exactly one is 1 in every row (one-hot encodings).

    Columns are gathered greedily in column order (the layout ``pandas.get_dummies``
    produces); a group needs at least two columns, one of them not always 0.
    """
    n_columns = array.shape[1]
    binary = [c for c in range(n_columns) if np.all((array[:, c] == 0) | (array[:, c] == 1))]
    groups: list[tuple[int, ...]] = []
    used: set[int] = set()
    for start in binary:
        if start in used or not np.any(array[:, start] == 1):
            continue
        members, total = [start], array[:, start].copy()
        for column in binary:
            if np.all(total == 1):
                break
            if column <= start or column in used or not np.any(array[:, column] == 1):
                continue  # a column that is always 0 stays fixed at 0
            candidate = total + array[:, column]
            if candidate.max() <= 1:
                members.append(column)
                total = candidate
        if len(members) >= 2 and np.all(total == 1):
            groups.append(tuple(members))
            used.update(members)
    return tuple(groups)


def _check_group(array: np.ndarray, group: list[int], names: Sequence[str]) -> None:
    shown = ", ".join(names[c] for c in group)
    if len(group) < 2:
        raise InvalidArgument(f"a one-hot group needs at least two columns, got [{shown}].")
    block = array[:, group]
    bad_value = np.argwhere((block != 0) & (block != 1))
    if len(bad_value):
        row, position = (int(i) for i in bad_value[0])
        raise InvalidArgument(
            f"group [{shown}] is not one-hot: column {names[group[position]]!r} is "
            f"{block[row, position]} at row {row} (one-hot columns hold only 0 and 1).")
    sums = block.sum(axis=1)
    bad_rows = np.flatnonzero(sums != 1)
    if len(bad_rows):
        raise InvalidArgument(
            f"group [{shown}] is not one-hot: row {int(bad_rows[0])} has {int(sums[bad_rows[0]])} "
            f"of its columns set ({len(bad_rows)} row(s) do not have exactly one).")


def row_space(
    X: Any, feature_names: Sequence[str] | None = None, *,
    groups: Sequence[Sequence[str]] | Mapping[str, Any] | None = None,
    integer: Sequence[str] = (), fixed: Sequence[str] | Mapping[str, float] | None = None,
) -> RowSpace:
    """The space of valid rows like X's: observed ranges, integer and fixed columns, one-hot groups.

    `groups=None` detects one-hot groups (0/1 columns of which exactly one is 1 in every row);
    `groups=[]` turns detection off; a list of lists of feature names gives them explicitly,
    as does the dict of group name -> features (names, flat indices or a mask) that explain()
    takes.
    """
    X = strings_as_categories(X)
    prepared = prepare_input(X, feature_names, missing=judged_later)
    require_tabular(prepared.array, "row_space")
    features = feature_bounds(X, feature_names, integer=integer, fixed=fixed)
    names = prepared.feature_names
    if groups is None:
        found_groups, features = _without_fixed(detect_one_hot_groups(prepared.array), features)
    else:
        # the same groups= as explain() and the checks take: there a group may be any set of
        # columns, so only the groups that hold just 0 and 1 in X are one-hot constraints
        explain_groups = isinstance(groups, Mapping)
        column_groups: list[list[int]] = []
        if isinstance(groups, Mapping):
            column_groups = _explain_group_columns(groups, prepared, names)
        elif isinstance(groups, str) or not isinstance(groups, Sequence):
            # Grid(...) and 'timesteps' cut images and sequences: no constraint on tabular rows
            cuts = (isinstance(groups, str) and groups == "timesteps") or hasattr(groups, "rows")
            why = (f"; {groups!r} splits images or sequences, and these rows are tabular"
                   if cuts else "")
            raise InvalidArgumentType(
                f"groups must be a list of lists of feature names (one list per one-hot group) "
                f"or explain()'s dict of group name -> features, got {type(groups).__name__}"
                f"{why}.")
        else:
            for group in groups:
                if isinstance(group, str) or not isinstance(group, Sequence):
                    raise InvalidArgumentType(
                        f"each entry of groups must be a list of feature names, got {group!r}.")
                column_groups.append(_names_to_columns(group, names, "groups"))
        found_groups = ()
        seen: set[int] = set()
        for columns in column_groups:
            overlap = seen & set(columns)
            if overlap:
                raise InvalidArgument(
                    f"feature {names[min(overlap)]!r} is in more than one group.")
            seen.update(columns)
            block = prepared.array[:, columns]
            if explain_groups and (len(columns) < 2 or ((block != 0) & (block != 1)).any()):
                continue
            _check_group(prepared.array, columns, names)
            found_groups += (tuple(columns),)
    return RowSpace(features, found_groups)


def _explain_group_columns(groups: Mapping[str, Any], prepared: PreparedInput,
                           names: Sequence[str]) -> list[list[int]]:
    """The columns of each group of explain()'s groups= (names, flat indices or a boolean
    mask); a group that differs per row is no constraint on a row's columns."""
    from pytest_kexplain.groups import resolve_groups

    players = resolve_groups(groups, prepared.feature_shape, names, len(prepared.array))
    if players is None or players.per_row:
        return []
    return [np.flatnonzero(players.assignment == index).tolist()
            for index, name in enumerate(players.names) if name in groups]


def _without_fixed(
    groups: tuple[tuple[int, ...], ...], features: tuple[FeatureBounds, ...]
) -> tuple[tuple[tuple[int, ...], ...], tuple[FeatureBounds, ...]]:
    """Drop user-fixed columns from detected groups; one fixed at 1 fixes the others at 0."""
    kept, updated = [], list(features)
    for group in groups:
        fixed = [c for c in group if features[c].kind == FIXED]
        if any(features[c].low == 1 for c in fixed):
            for c in group:
                if c not in fixed:
                    updated[c] = FeatureBounds(features[c].name, 0.0, 0.0, FIXED)
            continue
        rest = tuple(c for c in group if c not in fixed)
        if len(rest) >= 2:
            kept.append(rest)
        elif len(rest) == 1:  # the only category left: always 1
            c = rest[0]
            updated[c] = FeatureBounds(features[c].name, 1.0, 1.0, FIXED)
    return tuple(kept), tuple(updated)


# -- several inputs --------------------------------------------------------------------------

def _declared_or_given(X: Any, declared: DeclaredInputs, name: str) -> tuple[tuple[InputSpec, ...], bool]:
    """The model's inputs, or (for a model that declares none) those the data names."""
    if declared is not None:
        return declared
    if isinstance(X, Mapping):
        return tuple(InputSpec(str(key), None, "float32") for key in X), True
    return tuple(InputSpec(f"input_{i}", None, "float32") for i in range(len(X))), False


def _parts_in_model_order(X: Any, specs: tuple[InputSpec, ...], name: str) -> list[Any]:
    names = [spec.name for spec in specs]
    if isinstance(X, Mapping):
        keys = [str(key) for key in X]
        missing = [n for n in names if n not in keys]
        extra = [k for k in keys if k not in names]
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"no entry for {', '.join(map(repr, missing))}")
            if extra:
                problems.append(f"unknown key(s) {', '.join(map(repr, extra))}")
            raise InvalidArgument(
                f"{name} is a dict with {' and '.join(problems)}; the model's inputs are "
                f"{', '.join(map(repr, names))}: give one array or DataFrame per input, keyed "
                "by those names."
            )
        by_key = {str(key): value for key, value in X.items()}
        return [by_key[n] for n in names]
    if len(X) != len(names):
        raise InvalidArgument(
            f"{name} is a list of {count(len(X), 'array')} but the model has "
            f"{count(len(names), 'input')} "
            f"({', '.join(map(repr, names))}); give one array per input, in that order, or a "
            "dict keyed by the input names."
        )
    return list(X)


def _names_for_input(feature_names: Any, spec: InputSpec) -> Sequence[str] | None:
    """The names given for one input (a dict per input); a flat list is applied afterwards."""
    if isinstance(feature_names, Mapping):
        return feature_names.get(spec.name)
    return None


def _check_names_mapping(feature_names: Any, specs: tuple[InputSpec, ...]) -> None:
    if isinstance(feature_names, Mapping):
        unknown = [str(key) for key in feature_names if str(key) not in {s.name for s in specs}]
        if unknown:
            raise InvalidArgument(
                f"feature_names has names for {', '.join(map(repr, unknown))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not an input of the model; its inputs "
                f"are {', '.join(repr(s.name) for s in specs)}."
            )
    elif isinstance(feature_names, str):
        raise InvalidArgument("feature_names must be a list of names, not a single string.")


def _check_declared_shape(spec: InputSpec, shape: tuple[int, ...], label: str,
                          in_order: str = "") -> None:
    declared = spec.shape
    if declared is None:
        return
    if len(declared) != len(shape) or any(d is not None and d != s for d, s in zip(declared, shape)):
        expected = "(n, " + ", ".join("?" if d is None else str(d) for d in declared) + ")"
        raise InvalidArgument(
            f"{label} has samples of shape {shape} but the model's input {spec.name!r} expects "
            f"input of shape {expected}{in_order}."
        )


def _check_integer_ids(array: np.ndarray, spec: InputSpec, label: str) -> None:
    if spec.is_integer and not np.array_equal(array, np.round(array)):
        raise InvalidArgument(
            f"{label} holds non-integer values, but the model's input {spec.name!r} takes "
            f"integer ids ({spec.dtype}); pass the ids themselves."
        )


def _prepare_multi_input(
    X: Any, feature_names: Any, name: str, declared: DeclaredInputs,
    missing: MissingVerdict | None = None,
) -> PreparedInput:
    if len(X) == 0:
        raise InvalidArgument(f"{name} is an empty {type(X).__name__}; give one array per input.")
    specs, as_dict = _declared_or_given(X, declared, name)
    _check_names_mapping(feature_names, specs)
    parts = _parts_in_model_order(X, specs, name)
    arrays: list[Any] = []
    names: list[str] = []
    shapes: list[Any] = []
    category_columns: list[tuple[int, tuple[str, ...]]] = []
    categories: list[tuple[str, Any]] = []
    in_order = "" if isinstance(X, Mapping) else (  # a list: its position names the input
        f" (a list is bound in the model's input order, {', '.join(repr(s.name) for s in specs)})")
    for position, (spec, part) in enumerate(zip(specs, parts)):
        label = f"{name}[{spec.name!r}]" if isinstance(X, Mapping) else f"{name}[{position}]"
        prepared = prepare_input(part, _names_for_input(feature_names, spec), name=label,
                                 missing=missing)
        _check_declared_shape(spec, prepared.feature_shape, label, in_order)
        _check_integer_ids(prepared.array, spec, label)
        offset = sum(array.shape[1] for array in arrays)
        category_columns.extend((offset + position, labels)
                                for position, labels in prepared.category_columns)
        categories.extend((f"{spec.name}{NAME_SEPARATOR}{column}", dtype)
                          for column, dtype in prepared.categories)
        arrays.append(prepared.array.reshape(len(prepared.array), -1))
        shapes.append(prepared.feature_shape)
        names.extend(f"{spec.name}{NAME_SEPARATOR}{feature}" for feature in prepared.feature_names)
    rows = {len(array) for array in arrays}
    if len(rows) > 1:
        counts = ", ".join(f"{s.name!r}: {len(a)}" for s, a in zip(specs, arrays))
        raise InvalidArgument(
            f"the inputs of {name} have different numbers of samples ({counts}); every input "
            "needs one row per sample."
        )
    flat = np.ascontiguousarray(np.concatenate(arrays, axis=1))
    flat.setflags(write=False)
    if feature_names is not None and not isinstance(feature_names, Mapping):
        names = list(_check_feature_names(feature_names, flat.shape[1], name))
        _check_flat_names_match_inputs(names, specs, [a.shape[1] for a in arrays])
    layout = InputLayout(
        names=tuple(spec.name for spec in specs), shapes=tuple(shapes),
        dtypes=tuple(spec.dtype for spec in specs), as_dict=as_dict,
    )
    return PreparedInput(array=flat, feature_names=tuple(names), layout=layout,
                         categories=tuple(categories), category_columns=tuple(category_columns),
                         missing=missing)


def _check_flat_names_match_inputs(names: Sequence[str], specs: tuple[InputSpec, ...],
                                   sizes: Sequence[int]) -> None:
    """A flat name written 'input:feature' must sit among that input's features."""
    owners = [spec.name for spec, size in zip(specs, sizes) for _ in range(size)]
    inputs = {spec.name for spec in specs}
    for position, (feature, owner) in enumerate(zip(names, owners)):
        named = feature.split(NAME_SEPARATOR, 1)[0]
        if NAME_SEPARATOR in feature and named in inputs and named != owner:
            layout = ", ".join(f"{spec.name!r} ({size})" for spec, size in zip(specs, sizes))
            raise InvalidArgument(
                f"feature_names[{position}] is {feature!r}, which names input {named!r}, but "
                f"position {position} is a feature of input {owner!r}: the flat names follow "
                f"the model's inputs in order ({layout} features). Give them in that order, "
                "or a dict of names per input, feature_names={'input': [...]}.")


def _prepare_multi_background(background: Any, reference: PreparedInput, name: str) -> np.ndarray:
    layout = reference.layout
    assert layout is not None
    if isinstance(background, np.ndarray) and background.ndim == 2 \
            and background.shape[1] == layout.n_features:
        # already flat rows, as Explanation.data holds them
        return prepare_input(background, reference.feature_names, name=name,
                             missing=reference.missing).array
    specs = tuple(InputSpec(n, shape, dtype)
                  for n, shape, dtype in zip(layout.names, layout.shapes, layout.dtypes))
    if not isinstance(background, (Mapping, list, tuple)):
        raise InvalidArgument(
            f"{name} must have the same inputs as X: a dict keyed by "
            f"{', '.join(map(repr, layout.names))} (or a list in that order)."
        )
    background = _encode_input_categories(background, reference, layout, name)
    prepared = prepare_input(background, None, name=name, declared=(specs, layout.as_dict),
                             missing=reference.missing)
    _check_background_columns(background, prepared, reference, layout)
    return prepared.array


def _encode_input_categories(background: Any, reference: PreparedInput, layout: InputLayout,
                             name: str) -> Any:
    """The background's DataFrames with X's categories for each input, so that a code means
    the same category in both (a background holding fewer categories would shift them)."""
    if not reference.categories:
        return background

    def encoded(input_name: Any, part: Any) -> Any:
        prefix = f"{input_name}{NAME_SEPARATOR}"
        dtypes = {column[len(prefix):]: dtype for column, dtype in reference.categories
                  if column.startswith(prefix)}
        if not dtypes or not is_dataframe(part):
            return part
        return encode_categories(part, dtypes, f"{name}[{input_name!r}]")

    if isinstance(background, Mapping):
        return {key: encoded(key, part) for key, part in background.items()}
    return [encoded(input_name, part) for input_name, part in zip(layout.names, background)] \
        + list(background[len(layout.names):])


def _check_background_columns(background: Any, prepared: PreparedInput,
                              reference: PreparedInput, layout: InputLayout) -> None:
    """A background input given as a DataFrame must have X's columns for that input, in order."""
    parts = _parts_in_model_order(background, tuple(
        InputSpec(n, None, "float32") for n in layout.names), "background")
    start = 0
    for input_name, size, part in zip(layout.names, layout.sizes, parts):
        stop = start + size
        expected, given = reference.feature_names[start:stop], prepared.feature_names[start:stop]
        start = stop
        prefix = input_name + NAME_SEPARATOR
        if not is_dataframe(part) or not all(n.startswith(prefix) for n in expected) \
                or expected == given:
            continue
        raise InvalidArgument(
            f"background[{input_name!r}] columns {[n[len(prefix):] for n in given]} differ from "
            f"X[{input_name!r}]'s {[n[len(prefix):] for n in expected]}; both must describe the "
            "same features in the same order.")
