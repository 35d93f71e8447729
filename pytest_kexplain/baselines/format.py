"""The baseline file format: canonical, rounded JSON a reviewer can read in a diff.

One JSON document per baseline holds the metadata, the global importance and rank of every
feature (one line per feature) and the per-sample attributions (one line per sample). When
there are more than ``INLINE_LIMIT`` attribution values they go into a NumPy ``.npz`` file
beside it, named after their digest and loaded with ``allow_pickle=False``. Numbers are
rounded to ``SIGNIFICANT_DIGITS`` relative to the largest magnitude of their array, so that
rewriting a baseline of the same model gives the same bytes. Reading never executes code.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_kexplain.baselines import BaselineError
from pytest_kexplain.cache import array_digest
from pytest_kexplain.errors import NonFiniteError, count
from pytest_kexplain.explanation import Explanation
from pytest_kexplain.metrics import shares

FORMAT_NAME = "pytest-kexplain explanation baseline"
FORMAT_VERSION = 1
SIGNIFICANT_DIGITS = 5
SHARE_DECIMALS = 4
INLINE_LIMIT = 2048  # attribution values kept in the JSON; more go to the .npz sidecar
VERSIONED_PACKAGES = ("pytest-kexplain", "numpy", "keras", "tensorflow", "tensorflow-cpu",
                      "jax", "torch", "shap")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: what an explainer reports about its run among its options, not a setting; left out of the
#: file since it moves with every retrain and machine (the explanation itself still has it)
DIAGNOSTIC_OPTIONS = ("completeness_gap", "rows_over_tolerance")


@dataclass(frozen=True)
class Baseline:
    """What a baseline file records about one explanation."""

    test: str
    name: str | None
    method: str
    output: str
    options: Mapping[str, Any]
    feature_names: tuple[str, ...]
    data_shape: tuple[int, ...]
    data_fingerprint: str
    background_fingerprint: str | None
    model_description: str
    model_fingerprint: str | None
    importance: np.ndarray  # rounded, in feature order
    values: np.ndarray  # rounded per-sample attributions, shape data_shape
    versions: Mapping[str, str] = field(default_factory=dict)
    #: the rows (of feature_names) that are groups of features (groups=); ungrouped columns
    #: beside them stay features. Empty: every row is a feature (or a token)
    groups: tuple[str, ...] = ()
    #: a model with several inputs: each input's name and sample shape, in the order the
    #: features concatenate them. Empty: one input, or a file written without them
    inputs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    #: the Keras backend (KERAS_BACKEND) that computed it: "tensorflow", "jax" or "torch".
    #: None: a model Keras does not run (a scikit-learn estimator), or a file written without it
    backend: str | None = None

    @property
    def row_kind(self) -> str:
        """What the rows are, for table headers: feature, group, token, or a mix."""
        return row_kind(self.feature_names, self.groups, self.options)

    @property
    def row_noun(self) -> str:
        """The plural of row_kind: 'features', 'groups', 'features and groups', ..."""
        return " and ".join(f"{word}s" for word in self.row_kind.split(" or "))

    @property
    def ranking(self) -> list[str]:
        """Feature names by descending importance; ties keep feature order."""
        order = np.lexsort((np.arange(len(self.importance)), -self.importance))
        return [self.feature_names[i] for i in order]


@dataclass(frozen=True)
class RenderedBaseline:
    """The bytes of a baseline: the JSON text and, for large attributions, the sidecar."""

    json_text: str
    sidecar_name: str | None = None
    sidecar_bytes: bytes | None = None


def row_kind(feature_names: Sequence[str], groups: Sequence[str], options: Mapping[str, Any]) -> str:
    """What an explanation's rows are: "feature", "group", "token", or a mix ("feature or
    group", "feature or token"), from the rows that are groups and the explanation's options."""
    if options.get("token_inputs"):  # token positions beside other inputs' features
        return "feature or token"
    if options.get("token_ids") == "vocabulary":
        return "token"
    if not groups:
        return "feature"
    return "group" if len(set(groups)) == len(feature_names) else "feature or group"


def group_rows(groups: Any, rows: Sequence[str], X: Any) -> tuple[str, ...]:
    """The rows of an explanation made with `groups=` that are groups: all of them, except
    the columns a dict of groups leaves ungrouped on tabular data (they stay features); on
    images and sequences what no group claims is one more group, 'rest'."""
    from pytest_kexplain.groups import REST, splits_one_input

    if groups is None:
        return ()
    if not isinstance(groups, Mapping):  # 'timesteps', Grid(...), a label mask
        return tuple(rows)
    named = {str(name) for name in groups}
    for name, members in groups.items():  # {input: Grid(...) | 'timesteps' | {group: ...}}
        if isinstance(members, Mapping):
            named.update(f"{name}:{group}" for group in [*members, REST])
        elif splits_one_input(members):  # Grid(...), 'timesteps' or a label mask
            named.update(row for row in rows if row.startswith(f"{name}:"))
    ungrouped = [row for row in rows if row not in named]
    if ungrouped == [REST] and not isinstance(X, (Mapping, list, tuple)) and _sample_ndim(X) > 1:
        return tuple(rows)
    return tuple(row for row in rows if row in named)


def _sample_ndim(X: Any) -> int:
    """How many dimensions one sample of X has (1 for a table)."""
    try:
        return max(int(np.ndim(X)) - 1, 1)
    except (TypeError, ValueError):  # an object NumPy cannot size: treated as a table
        return 1


def quantise(array: Any, significant: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """Round to `significant` digits relative to the array's largest magnitude (-0.0 -> 0.0)."""
    array = np.asarray(array, dtype=np.float64)
    largest = float(np.abs(array).max()) if array.size else 0.0
    if largest == 0.0:
        return np.zeros_like(array)
    decimals = significant - 1 - int(np.floor(np.log10(largest)))
    return np.round(array, decimals) + 0.0


def installed_versions() -> dict[str, str]:
    """Versions of the installed packages that shape explanations (metadata only, no imports)."""
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def json_safe(value: Any) -> Any:
    """Options as stable JSON: arrays by digest, callables by name, floats rounded."""
    if isinstance(value, np.ndarray):
        return {"array": list(value.shape), "digest": array_digest(value)}
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(f"{float(value):.{SIGNIFICANT_DIGITS + 3}g}")
    if isinstance(value, Mapping):
        return {str(k): json_safe(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return type(value).__qualname__


def from_explanation(
    explanation: Explanation,
    *,
    test: str,
    name: str | None,
    model_description: str,
    model_fingerprint: str | None,
    background_fingerprint: str | None = None,
    groups: Sequence[str] = (),
    backend: str | None = None,
) -> Baseline:
    """The baseline an explanation would be written as (numbers already rounded).

    `groups` names the explanation's rows that are groups of features (from groups=);
    `backend` the Keras backend that computed it (None for a model Keras does not run)."""
    check_finite(explanation)
    return Baseline(
        test=test,
        name=name,
        method=explanation.method,
        output=_recorded_output(explanation),
        options=json_safe({key: value for key, value in explanation.options.items()
                           if key not in DIAGNOSTIC_OPTIONS}),
        feature_names=tuple(explanation.feature_names),
        data_shape=tuple(int(s) for s in explanation.data.shape),
        data_fingerprint=array_digest(explanation.data),
        background_fingerprint=background_fingerprint,
        model_description=model_description,
        model_fingerprint=model_fingerprint,
        importance=quantise(explanation.importance_array()),
        values=quantise(explanation.values),
        versions=installed_versions(),
        groups=tuple(name for name in explanation.feature_names if name in set(groups)),
        inputs=_inputs_of(explanation),
        backend=backend,
    )


def _recorded_output(explanation: Explanation) -> str:
    """The explained output a baseline records: its name, except on a one-unit output seen as
    two classes, where target='predicted' records that each row's own class is explained, and
    the unit's own class of one of several outputs its name alone, as before the view."""
    head, labels = explanation.output, explanation.class_names
    if explanation.two_class_view is None or labels is None:
        return explanation.output_name
    if explanation.output_name == ("predicted" if head is None else f"{head}[predicted]"):
        from pytest_kexplain.adapters.binary import per_row_output

        return per_row_output(labels, head)
    if head is not None and explanation.output_name == f"{head}[{labels[1]}]":
        return head  # the unit itself, recorded as when it was explained as one unit
    return explanation.output_name


def _inputs_of(explanation: Explanation) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Each input's name and sample shape when the explanation's rows concatenate several."""
    names, shapes = explanation.input_names, explanation.input_shapes
    if not names or not shapes or len(names) < 2:
        return ()
    return tuple((str(name), tuple(int(n) for n in shape)) for name, shape in zip(names, shapes))


def check_finite(explanation: Explanation) -> None:
    """Raise NonFiniteError when an explanation holds NaN or infinite attributions."""
    values = np.asarray(explanation.values, dtype=np.float64)
    finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if finite.all():
        return
    rows = np.flatnonzero(~finite)
    shown = ", ".join(str(int(r)) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
    raise NonFiniteError(
        f"the explanation holds NaN or infinite attributions in {len(rows)} of {count(len(values), 'row')} "
        f"(rows {shown}): the model's output or gradient is not finite there. A baseline cannot "
        "record or compare it; check the model (and its inputs) on those rows."
    )


def render(baseline: Baseline, stem: str) -> RenderedBaseline:
    """The JSON text (and sidecar, if the attributions are large) of a baseline file `stem`."""
    ranking = baseline.ranking
    fractions = shares(baseline.importance)
    features = [
        {"feature": feature, "rank": ranking.index(feature) + 1,
         "importance": float(baseline.importance[i]), "share": round(float(fractions[i]), SHARE_DECIMALS)}
        for i, feature in enumerate(baseline.feature_names)
    ]
    flat = baseline.values.reshape(len(baseline.values), -1)
    attributions: dict[str, Any] = {"shape": list(baseline.values.shape)}
    sidecar_name = sidecar_bytes = None
    if baseline.values.size <= INLINE_LIMIT:
        attributions["values"] = [[float(v) for v in row] for row in flat]
    else:
        digest = array_digest(baseline.values)
        sidecar_name = f"{stem}.{digest[:12]}.npz"
        sidecar_bytes = npz_bytes({"values": baseline.values})
        attributions.update({"file": sidecar_name, "digest": digest})
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "test": baseline.test,
        "name": baseline.name,
        "method": baseline.method,
        "output": baseline.output,
        "options": baseline.options,
        "data": {"shape": list(baseline.data_shape), "fingerprint": baseline.data_fingerprint,
                 "background_fingerprint": baseline.background_fingerprint},
        "model": {"description": baseline.model_description,
                  "fingerprint": baseline.model_fingerprint},
        "versions": dict(baseline.versions),
        # only for a model Keras runs, so files of scikit-learn estimators keep their bytes
        **({"backend": baseline.backend} if baseline.backend is not None else {}),
        # only when groups= made some rows groups, so files without groups keep their bytes
        **({"groups": list(baseline.groups)} if baseline.groups else {}),
        # only for a model with several inputs, so single-input files keep their bytes
        **({"inputs": [{"name": name, "shape": list(shape)} for name, shape in baseline.inputs]}
           if baseline.inputs else {}),
        "ranking": ranking,
        "features": features,
        "attributions": attributions,
    }
    return RenderedBaseline(_render(document, 0) + "\n", sidecar_name, sidecar_bytes)


def parse(text: str, source: str, read_sidecar: Callable[[str], bytes]) -> Baseline:
    """Read a baseline document; any malformation raises BaselineError naming `source`."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BaselineError(f"explanation baseline {source} is not valid JSON: {error}.") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise BaselineError(f"explanation baseline {source} is not valid JSON: it is nested "
                            "too deeply to read.") from None
    try:
        return _from_document(document, read_sidecar)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise BaselineError(f"explanation baseline {source} is malformed: {detail}.") from None


def _from_document(document: Any, read_sidecar: Callable[[str], bytes]) -> Baseline:
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ValueError(f"it is not a {FORMAT_NAME} file (no \"format\": \"{FORMAT_NAME}\")")
    if document["version"] != FORMAT_VERSION or isinstance(document["version"], bool):
        raise ValueError(f"format version {document['version']!r} is not supported "
                         f"(this pytest-kexplain reads version {FORMAT_VERSION})")
    rows = document["features"]
    feature_names = tuple(_text(row["feature"], "feature") for row in rows)
    importance = np.array([float(row["importance"]) for row in rows], dtype=np.float64)
    shape = tuple(int(s) for s in document["data"]["shape"])
    values = _attributions(document["attributions"], read_sidecar)
    if values.shape != shape:
        raise ValueError(f"attributions have shape {values.shape}, data shape is {shape}")
    if int(np.prod(shape[1:])) != len(feature_names):
        raise ValueError(f"{len(feature_names)} features listed for samples of shape {shape[1:]}")
    if not (np.isfinite(importance).all() and np.isfinite(values).all()):
        raise ValueError("it contains non-finite numbers")
    model = document["model"]
    return Baseline(
        test=_text(document["test"], "test"),
        name=document["name"],
        method=_text(document["method"], "method"),
        output=_text(document["output"], "output"),
        options=dict(document["options"]),
        feature_names=feature_names,
        data_shape=shape,
        data_fingerprint=_text(document["data"]["fingerprint"], "data fingerprint"),
        background_fingerprint=document["data"].get("background_fingerprint"),
        model_description=_text(model["description"], "model description"),
        model_fingerprint=model.get("fingerprint"),
        importance=importance,
        values=values,
        versions=dict(document.get("versions") or {}),
        groups=_groups(document.get("groups", []), feature_names),
        inputs=_input_shapes(document.get("inputs", []), len(feature_names)),
        backend=_backend(document.get("backend")),
    )


def _backend(value: Any) -> str | None:
    """The optional "backend" field: the name of the Keras backend that wrote the file."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"backend must be the name of a Keras backend (\"tensorflow\", "
                         f"\"jax\", \"torch\"), got {json.dumps(value)}")
    return value


def _input_shapes(listed: Any, n_features: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The optional "inputs" field: each input's name and sample shape (absent: none)."""
    if not isinstance(listed, list):
        raise ValueError(f"inputs must be a list of {{name, shape}} objects, got {listed!r}")
    inputs = []
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry["shape"]):
            raise ValueError(f"each input must be {{\"name\": ..., \"shape\": [sizes]}}, "
                             f"got {entry!r}")
        inputs.append((_text(entry.get("name"), "input name"), tuple(entry["shape"])))
    width = sum(int(np.prod(shape, dtype=np.int64)) for _, shape in inputs)
    if inputs and width != n_features:
        raise ValueError(f"its inputs have {width} values per sample but {n_features} features "
                         "are listed")
    return tuple(inputs)


def _groups(listed: Any, feature_names: tuple[str, ...]) -> tuple[str, ...]:
    """The optional "groups" field: distinct names of listed features (absent: none)."""
    if not isinstance(listed, list):
        raise ValueError(f"groups must be a list of feature names, got {listed!r}")
    names = tuple(_text(name, "group") for name in listed)
    unknown = [name for name in names if name not in feature_names]
    if unknown:
        raise ValueError(f"groups lists {', '.join(map(repr, unknown))}, which "
                         f"{'is' if len(unknown) == 1 else 'are'} not among its features")
    if len(set(names)) != len(names):
        raise ValueError("groups lists a name twice")
    return names


def _attributions(section: Mapping[str, Any], read_sidecar: Callable[[str], bytes]) -> np.ndarray:
    shape = tuple(int(s) for s in section["shape"])
    if "values" in section:
        return np.array(section["values"], dtype=np.float64).reshape(shape)
    file_name = _text(section["file"], "attributions file")
    if "/" in file_name or "\\" in file_name:
        raise ValueError(f"attributions file {file_name!r} must be a plain file name")
    try:
        data = read_sidecar(file_name)
        _check_archive_size(data, shape)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            values = np.asarray(archive["values"], dtype=np.float64)
    except FileNotFoundError:
        raise ValueError(f"its attributions file {file_name} is missing") from None
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"its attributions file {file_name} cannot be read ({error})") from None
    if array_digest(values) != section["digest"]:
        raise ValueError(f"its attributions file {file_name} does not match the recorded digest")
    return values.reshape(shape)


def _check_archive_size(data: bytes, shape: tuple[int, ...]) -> None:
    """Refuse an archive whose unpacked arrays are larger than the recorded shape needs."""
    largest = 8 * int(np.prod(shape, dtype=np.int64)) + 4096  # float64 values and the .npy header
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > largest:
        raise ValueError(f"it unpacks to {unpacked:,} bytes, more than attributions of shape "
                         f"{shape} need")


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An .npz archive with fixed timestamps, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # the same bytes whichever OS writes it
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}")
    return value


def _render(value: Any, indent: int) -> str:
    """JSON with nested objects indented and each row of a table of rows on one line."""
    pad = " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [f"{pad}{_compact(k)}: {_render(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and value and all(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(pad + _compact(v) for v in value) + "\n" + " " * indent + "]"
    return _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
