"""The object behind the `explanation_baseline` fixture: compare with, or rewrite, a baseline."""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kexplain.adapters import get_adapter
from pytest_kexplain.adapters.labels import readable_output
from pytest_kexplain.baselines import BaselineError, format as baseline_format, store
from pytest_kexplain.baselines.compare import Comparison, compare
from pytest_kexplain.baselines.messages import drift_message, update_command
from pytest_kexplain.baselines.tolerances import (
    TOLERANCE_KEYWORDS,
    Tolerances,
    resolve_tolerances,
    split_tolerances,
)
from pytest_kexplain.cache import array_digest
from pytest_kexplain.errors import BaselineRaceWarning, CheckFailed, InvalidArgument, InvalidArgumentType
from pytest_kexplain.events import note, recorded
from pytest_kexplain.settings import with_defaults

#: where tolerances that are not passed to assert_match come from, for error messages
DEFAULTS_SOURCE = "kexplain ini options / @pytest.mark.kexplain"


@dataclass
class ExplanationBaseline:
    """Baselines of one test: `assert_match` compares with the file, or rewrites it on update."""

    nodeid: str
    directory: Path
    update: bool
    rootdir: Path = field(repr=False)
    defaults: Mapping[str, Any] = field(default_factory=dict, repr=False)
    record: Callable[..., None] = field(default=lambda path, status, digest="": None, repr=False)
    #: the module part of the file names (see store.module_prefix); None: the module's file name
    prefix: str | None = None
    #: the run's registry of which test writes which file (see store.claim); None: not checked
    claims: Path | None = field(default=None, repr=False)
    _checked: set[str] = field(default_factory=set, repr=False)

    @recorded("explanation_baseline.assert_match")
    def assert_match(self, model: Any, X: Any, *, method: str | None = None,
                     name: str | None = None, **kwargs: Any) -> Comparison | None:
        """Fail if model's explanation of X drifted from the baseline (--kexplain-update rewrites it).

        Keywords are explain()'s (feature_names, background, target, seed, options) and the
        tolerances (rank_correlation, rank_metric, top_k, top_k_overlap, max_share_change,
        min_top_importance, sign_agreement, sample_similarity). Returns the comparison, or None
        when the baseline was rewritten. A drift raises `CheckFailed` with the comparison as
        its `result` and leaves the current explanation beside the baseline as
        `<baseline>.obtained.json`.
        """
        __tracebackhide__ = True
        stem = self._claim(name)
        if self.update:
            self._claim_file(stem, name)  # before explaining: a collision is a usage error
        call_tolerances, explain_kwargs = split_tolerances(kwargs)
        check_keywords(explain_kwargs)  # a misspelt tolerance is named before anything else
        tolerances = resolve_tolerances((self.defaults, DEFAULTS_SOURCE),
                                        (call_tolerances, "assert_match()"))
        path = self.directory / f"{stem}.json"
        seen: bytes | None = None
        baseline: baseline_format.Baseline | None = None
        if self.update:
            seen = _bytes_if_present(path)  # to notice another update of this file meanwhile
        else:
            # mistakes in the data come before "create the baseline" (which would meet them)
            _check_data(model, X, with_defaults(explain_kwargs, self.defaults))
            baseline = self._load(stem, name)  # fail fast, before explaining
        if method is not None:
            explain_kwargs["method"] = method
        current = self._explain(model, X, name, explain_kwargs)
        if baseline is None:
            self._save(stem, current, tolerances, seen)
            return None
        shown = self._display(path)
        chosen = with_defaults(explain_kwargs, self.defaults).get("method", "auto")
        _check_compatible(baseline, current, shown, self.nodeid, auto=chosen in (None, "auto"),
                          given=X)
        comparison = compare(current.feature_names, baseline.importance, current.importance,
                             tolerances, baseline.values, current.values, row=current.row_kind)
        note(baseline=shown, baseline_status="compared", baseline_values=baseline.values,
             current_values=current.values)
        if comparison.passed:
            store.remove_obtained(self.directory, stem)
            return comparison
        notes = _context_notes(baseline, current)
        notes.append(self._write_obtained(stem, current))
        raise CheckFailed(drift_message(
            comparison,
            headline=f"explanation{_of_output(current.output)} drifted from the baseline {shown}",
            accept_hint=("If the change is intended, accept it (then review and commit the "
                         f"file):\n    {update_command(self.nodeid)}"),
            notes=notes,
            column=current.row_kind,
        ), comparison)

    def _explain(self, model: Any, X: Any, name: str | None,
                 explain_kwargs: dict[str, Any]) -> baseline_format.Baseline:
        """The current explanation, in the form a baseline file records."""
        from pytest_kexplain.api import explain

        merged = with_defaults(explain_kwargs, self.defaults)
        explanation = explain(model, X, **merged)
        note(explanation=explanation)  # the report names its method and output
        if "token_ids" in explanation.options:  # the report draws its tokens from it
            note(token_explanation=explanation)
        _, adapter = get_adapter(model)
        return baseline_format.from_explanation(
            explanation, test=self.nodeid, name=name,
            model_description=getattr(adapter, "portable_description", adapter.description),
            model_fingerprint=adapter.fingerprint(),
            background_fingerprint=_background_fingerprint(explain_kwargs.get("background")),
            groups=baseline_format.group_rows(merged.get("groups"), explanation.feature_names, X),
            backend=keras_backend_of(adapter),
        )

    def _claim(self, name: str | None) -> str:
        """The file stem of this baseline; each one may be checked once per test."""
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidArgument(f"name must be a non-empty string, got {name!r}.")
        stem = store.baseline_stem(self.nodeid, name, self.prefix)
        if stem.lower().endswith(store.OBTAINED):
            owner = stem[: -len(store.OBTAINED)]
            raise InvalidArgument(
                f"name {name!r} gives the baseline file {stem}.json, the name of the current "
                f"explanation a drifted gate writes beside the baseline {owner}.json (and "
                "deletes once that gate passes): it would be taken for, and removed as, such a "
                "file. Choose a name that does not end with '.obtained'.")
        if stem in self._checked:
            which = "without a name" if name is None else f"named {name!r}"
            raise InvalidArgument(
                f"this test already checked a baseline {which}; give each assert_match() in "
                "one test its own name=, e.g. assert_match(model, X, name='holdout')."
            )
        self._checked.add(stem)
        return stem

    def _claim_file(self, stem: str, name: str | None) -> None:
        """Refuse to write a file another test of this run writes (or will write): ids that
        differ only in '::' against '.', or only in letter case, map to one file name."""
        __tracebackhide__ = True
        if self.claims is None:
            return
        owner = {"test": self.nodeid, "name": name, "stem": stem}
        other = store.claim(self.claims, store.claim_key(self.directory, stem), owner)
        if other is None:
            return
        shown = self._display(self.directory / f"{stem}.json")
        why = ("their file names differ only in letter case, which the file systems of macOS "
               "and Windows do not tell apart" if other.get("stem") != stem else
               "their ids differ only in characters that file names do not keep ('::' and "
               "'.' both become '.')")
        writers = (f"this test writes the explanation baseline {shown} twice, as "
                   f"name={other.get('name')!r} and name={name!r}"
                   if other.get("test") == self.nodeid else
                   f"two tests of this run write the explanation baseline {shown}: "
                   f"{_owner(other)} and {_owner(owner)}")
        raise BaselineError(
            f"{writers}; {why}, so one would overwrite the other "
            "(and the next run would refuse the file).\n"
            "Give one of them its own name, assert_match(model, X, name='...'), or a "
            "parametrize id that differs in more than that. Nothing was written for this test."
        )

    def _save(self, stem: str, current: baseline_format.Baseline, tolerances: Tolerances,
              seen: bytes | None) -> None:
        __tracebackhide__ = True
        rendered = baseline_format.render(current, stem)
        self._check_passes_against_itself(rendered, current, tolerances)
        result = store.save(self.directory, stem, rendered.json_text, rendered.sidecar_name,
                            rendered.sidecar_bytes, seen=seen, keep_equivalent=True)
        store.remove_obtained(self.directory, stem)
        shown = self._display(result.path)
        if result.raced:
            warnings.warn(BaselineRaceWarning(
                f"{shown} was changed by another process while this test updated it (two "
                "--kexplain-update runs at once?); it now holds this run's result. Rerun the "
                "update alone to be sure which model it records."), stacklevel=2)
        digest = store.bytes_digest(store.read_regular(result.path, shown))
        self.record(shown, result.status, digest)
        note(baseline=shown, baseline_status=result.status,
             current_values=current.values, current_importance=current.importance,
             feature_names_current=current.feature_names)

    def _check_passes_against_itself(self, rendered: baseline_format.RenderedBaseline,
                                     current: baseline_format.Baseline, tolerances: Tolerances) -> None:
        """The invariant every update keeps: the model that wrote a baseline passes against it."""
        __tracebackhide__ = True
        written = baseline_format.parse(rendered.json_text, "(new)",
                                        lambda file: rendered.sidecar_bytes or b"")
        comparison = compare(current.feature_names, written.importance, current.importance,
                             tolerances, written.values, current.values)
        if not comparison.passed:
            failed = "; ".join(check.describe() for check in comparison.failures)
            raise InvalidArgument(
                f"the new baseline would fail against the model that wrote it ({failed}), so it "
                "was not written. These tolerances cannot be met by an unchanged model; "
                "loosen them."
            )

    def _write_obtained(self, stem: str, current: baseline_format.Baseline) -> str:
        """Write the current explanation beside the baseline; the note saying where (or why not)."""
        rendered = baseline_format.render(current, stem + store.OBTAINED)
        try:
            path = store.write_obtained(self.directory, stem, rendered.json_text,
                                        rendered.sidecar_name, rendered.sidecar_bytes)
        except (BaselineError, OSError) as error:
            return f"the current explanation could not be written beside the baseline: {error}"
        return (f"the current explanation was written to {self._display(path)} (compare it with "
                "the baseline; it is removed when the test passes again).")

    def _load(self, stem: str, name: str | None) -> baseline_format.Baseline:
        __tracebackhide__ = True
        path = self.directory / f"{stem}.json"
        shown = self._display(path)
        hint = (f"It was left as it is. Fix it, or rewrite it from the current model with\n"
                f"    {update_command(self.nodeid)}")
        try:
            with store.directory_lock(self.directory, exclusive=False):
                text = store.read_text(path, shown)
                baseline = baseline_format.parse(text, shown, self._read_sidecar)
        except FileNotFoundError:
            which = "" if name is None else f" named {name!r}"
            raise BaselineError(
                f"no explanation baseline{which} for this test yet: {shown} does not exist.\n"
                f"Create it by running\n    {update_command(self.nodeid)}\n"
                "then review the file and commit it with your tests."
            ) from None
        except BaselineError as error:
            raise BaselineError(f"{error}\n{hint}") from None
        if not store.same_test(baseline.test, self.nodeid):
            raise BaselineError(
                f"explanation baseline {shown} was written by the test {baseline.test!r}, not by "
                f"this test ({self.nodeid!r}); two tests map to one file, or the file was copied.\n"
                f"{hint}"
            )
        return baseline

    def _read_sidecar(self, file: str) -> bytes:
        return store.read_regular(self.directory / file, self._display(self.directory / file),
                                  limit=store.MAX_SIDECAR_BYTES)

    def _display(self, path: Path) -> str:
        """A path relative to the rootdir when possible (stable across machines and workers)."""
        try:
            return Path(os.path.relpath(path, self.rootdir)).as_posix()
        except ValueError:  # another drive on Windows
            return str(path)


def _owner(owner: Mapping[str, Any]) -> str:
    """A claimant of a baseline file, as an error names it: its test id and baseline name."""
    name = owner.get("name")
    return repr(owner.get("test")) + ("" if name is None else f" (name={name!r})")


def _bytes_if_present(path: Path) -> bytes | None:
    """A baseline JSON's bytes as this test finds them (None: no file, b"": not readable)."""
    try:
        return store.read_regular(path, str(path))
    except FileNotFoundError:
        return None
    except (BaselineError, OSError):
        return b""


def check_keywords(explain_kwargs: Mapping[str, Any], caller: str = "assert_match()",
                   own: Sequence[str] = ("name",)) -> None:
    """A keyword that is neither explain()'s, an option of some method nor a tolerance is a
    usage error naming the closest valid one (it would otherwise reach the explainer as an
    unknown option, or go unnoticed until the baseline exists)."""
    from pytest_kexplain.api import EXPLAIN_KEYWORDS
    from pytest_kexplain.explainers.base import REGISTRY  # filled by the package import

    options = sorted({option for spec in REGISTRY.values() for option in spec.defaults})
    for keyword in explain_kwargs:
        if keyword in EXPLAIN_KEYWORDS or keyword in options:
            continue
        valid = [*EXPLAIN_KEYWORDS, *own, *TOLERANCE_KEYWORDS, *options]
        close = difflib.get_close_matches(keyword, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}=?" if close else "."
        takes = "".join(f"{name}=, " for name in own)
        raise InvalidArgumentType(
            f"{caller} got an unexpected keyword argument {keyword!r}{hint} It takes "
            f"explain()'s keywords ({', '.join(EXPLAIN_KEYWORDS)}), {takes}the options of the "
            f"method and the drift tolerances ({', '.join(TOLERANCE_KEYWORDS)}).")


def _check_data(model: Any, X: Any, explain_kwargs: Mapping[str, Any]) -> None:
    """Validate X (and its feature names and groups) without calling the model."""
    __tracebackhide__ = True
    from pytest_kexplain.adapters.binding import model_data
    from pytest_kexplain.assertions._common import input_feature_names

    input_feature_names(model_data(model, X), explain_kwargs, model)


def _background_fingerprint(background: Any) -> str | None:
    if background is None:
        return None
    from pytest_kexplain.inputs import is_dataframe, judged_later, prepare_input

    if is_dataframe(background) and any(
            getattr(dtype, "kind", "O") not in "biuf" and str(dtype) != "category"
            for dtype in background.dtypes):  # string columns a scikit-learn pipeline encodes
        import hashlib

        import pandas as pd

        hashed = pd.util.hash_pandas_object(background, index=False).to_numpy().tobytes()
        return hashlib.blake2b(hashed + repr(list(map(str, background.columns))).encode(),
                               digest_size=16).hexdigest()
    return array_digest(prepare_input(background, name="background", missing=judged_later).array)


def _check_compatible(baseline: baseline_format.Baseline, current: baseline_format.Baseline, path: str,
                      nodeid: str, auto: bool = False, given: Any = None) -> None:
    """Raise BaselineError if the baseline describes another kind of explanation (`given`:
    the X this check was passed, whose shape the message gives for token ids)."""
    __tracebackhide__ = True
    problems = compatibility_problems(baseline, current, given=given)
    if problems and auto and baseline.method != current.method:
        # the same test, another choice of method='auto' (an earlier release chose otherwise)
        problems[0] += (
            ", which is what method='auto' picks for this model as it is now (earlier "
            "releases picked integrated gradients for a model that bins or looks up float "
            "values, or whose Masking layer skips the reference's time steps, where SHAP is "
            "now picked since no gradient passes such layers)")
    if problems:
        raise BaselineError(
            f"explanation baseline {path} was made for a different check:\n"
            + "".join(f"  - {p}\n" for p in problems)
            + f"It was left as it is. If this change is intended, rewrite it with\n"
              f"    {update_command(nodeid)}"
        )


def _per_row_change(before: baseline_format.Baseline, after: baseline_format.Baseline) -> str:
    """Why target='predicted' on a one-unit output with two class labels now explains another
    output: each row's own class, where earlier releases explained the unit's class on every
    row (baselines record the two apart, docs/baselines.md)."""
    from pytest_kexplain.adapters.binary import PER_ROW_CLASS

    per_row = [output for output in (before.output, after.output) if PER_ROW_CLASS in output]
    if len(per_row) != 1:
        return ""
    head = per_row[0].split(f"[{PER_ROW_CLASS}")[0] if "[" + PER_ROW_CLASS in per_row[0] \
        else None
    other = after.output if per_row[0] == before.output else before.output
    if other != ("predicted" if head is None else head):
        return ""
    return (" (target='predicted' on a one-unit output with two class labels: earlier "
            "releases explained the unit's class, the second label, on every row; this one "
            "explains each row's own class, the first label on rows the unit puts below its "
            "threshold)")


def _binary_score_change(before: baseline_format.Baseline,
                         after: baseline_format.Baseline) -> str:
    """Why a binary classifier's decision function now explains a class where earlier
    releases explained its one score under the name 'output'."""
    if before.output != "output" or "(decision_function)" not in after.model_description:
        return ""
    return (" (a binary classifier's decision function: earlier releases explained its one "
            "score under the name 'output'; this one explains it as two classes, [-z, z] "
            "labelled classes_, and with no target the positive class classes_[1], as "
            "predict_proba does)")


def compatibility_problems(before: baseline_format.Baseline, after: baseline_format.Baseline,
                           sides: tuple[str, str] = ("the baseline", "this check"),
                           given: Any = None) -> list[str]:
    """What makes two explanations incomparable (method, output, data shape, names), each
    side named as `sides` say (the gate: the baseline and this check, `given` the X it was
    passed; kexplain diff: OLD and NEW)."""
    old, new = sides
    problems = []
    if before.method != after.method:
        problems.append(f"method: {old} used {before.method!r}, {new} uses {after.method!r}")
    if before.output != after.output:
        problems.append(f"explained output: {old} explains {before.output!r}, "
                        f"{new} explains {after.output!r}"
                        + (_per_row_change(before, after) or _binary_score_change(before, after)))
    # a file written before baselines recorded their groups reads as ungrouped: only rows
    # that changed show that the grouping did
    regrouped = before.groups != after.groups and (
        before.feature_names != after.feature_names or before.data_shape != after.data_shape)
    if regrouped:
        problems.append(f"groups: {_grouping(old, before.groups)}, "
                        f"{_grouping(new, after.groups)}")
    if not regrouped and "token" in before.row_kind and "token" in after.row_kind and (
            before.data_shape != after.data_shape or before.feature_names != after.feature_names):
        # the rows are the distinct tokens the ids hold: the table's shape is not the ids'
        problems.append(_token_difference(before, after, sides, given))
        return problems
    if regrouped and before.data_shape[:1] != after.data_shape[:1]:
        # the grouped shape counts groups, not X's columns: only the rows compare
        problems.append(f"rows: {old} was made on {before.data_shape[0]} rows, "
                        + (f"this X has {after.data_shape[0]}" if new == "this check"
                           else f"{new} on {after.data_shape[0]}"))
    elif before.data_shape != after.data_shape and not regrouped:
        problems.append(f"input shape: {old} was made on X of shape {before.data_shape}, "
                        + (f"this X has shape {after.data_shape}" if new == "this check"
                           else f"{new} on X of shape {after.data_shape}"))
    if before.feature_names != after.feature_names:
        problems.append("feature names: " + _name_difference(before.feature_names,
                                                             after.feature_names, sides))
    return problems


#: names listed per side of a feature-name difference (an image has thousands of pixels)
SHOWN_NAMES = 10
#: tokens listed per side of a difference in the tokens two sets of ids hold
SHOWN_TOKENS = 5


def _grouping(side: str, groups: Sequence[str]) -> str:
    """How one side of a comparison grouped its features: none, or which groups."""
    if not groups:
        return f"{side} has no groups="
    return f"{side} explains the groups {_listed([repr(g) for g in groups])} (groups=)"


def _listed(names: Sequence[str], limit: int = SHOWN_NAMES, quoted: bool = False) -> str:
    """The first `limit` names (quoted: as repr, so that an empty token shows), and how many
    more there are."""
    shown = ", ".join(map(repr, names[:limit]) if quoted else names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _token_difference(before: baseline_format.Baseline, after: baseline_format.Baseline,
                      sides: tuple[str, str], given: Any) -> str:
    """How the token ids of two token explanations differ: each side's rows and distinct
    tokens (the gate: the shape of the X passed), and which tokens only one side holds."""
    old, new = sides
    gate = new == "this check"
    pure = before.row_kind == after.row_kind == "token"
    held = "distinct tokens" if pure else "features and tokens"
    head = (f"{'token ids' if pure else 'inputs'}: {old} was made on "
            f"{before.data_shape[0]} rows holding {len(before.feature_names)} {held}, ")
    count = len(after.feature_names)
    if gate and given is not None:
        head += f"this X has {_shape_words(given)} and holds {count}"
    else:
        head += f"{'this X' if gate else new} has {after.data_shape[0]} rows holding {count}"
    missing = [name for name in before.feature_names if name not in set(after.feature_names)]
    added = [name for name in after.feature_names if name not in set(before.feature_names)]
    parts = []
    if missing:
        parts.append(f"in {old} only: {_listed(missing, SHOWN_TOKENS, quoted=True)}")
    if added:
        parts.append(f"{'new' if gate else 'in ' + new + ' only'}: "
                     f"{_listed(added, SHOWN_TOKENS, quoted=True)}")
    if not parts and before.feature_names != after.feature_names:
        parts.append(_name_difference(before.feature_names, after.feature_names, sides))
    return head + "".join(f"; {part}" for part in parts)


def _shape_words(X: Any) -> str:
    """'shape (3, 8)' of an array of ids; 'shapes num (3, 2), text (3, 8)' of one per input."""
    import numpy as np

    if isinstance(X, Mapping):
        return "shapes " + ", ".join(f"{key} {np.shape(part)}" for key, part in X.items())
    if isinstance(X, (list, tuple)) and X and all(np.ndim(part) >= 2 for part in X):
        return "shapes " + ", ".join(f"{index} {np.shape(part)}"
                                     for index, part in enumerate(X))
    return f"shape {np.shape(X)}"


def _name_difference(before: tuple[str, ...], after: tuple[str, ...],
                     sides: tuple[str, str] = ("the baseline", "this check")) -> str:
    gate = sides[1] == "this check"  # the gate's wording; kexplain diff names OLD and NEW
    old = "baseline" if gate else sides[0]
    kept = set(after)
    missing = [n for n in before if n not in kept]
    added = [n for n in after if n not in set(before)]
    if not missing and not added:
        first = next(i for i, (a, b) in enumerate(zip(before, after)) if a != b)
        return (f"same names in another order: position {first} is {before[first]!r} in "
                f"{sides[0]}, {after[first]!r} {'now' if gate else 'in ' + sides[1]} "
                f"({old}: {_listed(before)}; {'now' if gate else sides[1]}: {_listed(after)})")
    parts = []
    if missing:
        parts.append(f"in {sides[0]} only: {_listed(missing)}")
    if added:
        parts.append(f"new: {_listed(added)}" if gate else
                     f"in {sides[1]} only: {_listed(added)}")
    return "; ".join(parts)


def _changed_settings(method: str, before: Mapping[str, Any],
                      after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings a user chooses (the method's options, seed, pad id) that differ. What an
    explainer reports about its run (integrated gradients' max_steps_used, completeness_gap)
    is left out: it moves with the model, not with a setting."""
    from pytest_kexplain.explainers.base import REGISTRY  # filled by the package import

    spec = REGISTRY.get(method)
    keys = set(before) | set(after)
    if spec is not None:
        keys &= {*spec.defaults, "seed", "pad_id"}
    return {key: (before.get(key), after.get(key)) for key in sorted(keys)
            if before.get(key) != after.get(key)}


def _context_notes(baseline: baseline_format.Baseline, current: baseline_format.Baseline) -> list[str]:
    """Facts that help explain a drift: other data, other options, other package versions."""
    notes = []
    if baseline.data_fingerprint != current.data_fingerprint:
        notes.append("X differs from the data the baseline was made on (same shape, other values).")
    if baseline.background_fingerprint != current.background_fingerprint:
        notes.append("the background data differs from the baseline's.")
    changed_settings = _changed_settings(current.method, baseline.options, current.options)
    if changed_settings:
        notes.append("explainer options changed: " + ", ".join(
            f"{key} {before!r} -> {after!r}" for key, (before, after) in changed_settings.items())
            + ".")
    if baseline.backend is not None and current.backend is not None \
            and baseline.backend != current.backend:
        notes.append(f"baseline written under {baseline.backend}, checked under "
                     f"{current.backend} (KERAS_BACKEND): float32 round-off differs between "
                     "backends, far less than the default tolerances.")
    changed = {k: (baseline.versions.get(k), v) for k, v in current.versions.items()
               if baseline.versions.get(k) != v}
    if changed:
        notes.append("package versions changed: " + ", ".join(
            f"{k} {old or '-'} -> {new}" for k, (old, new) in sorted(changed.items())))
    if baseline.model_fingerprint is not None and baseline.model_fingerprint == current.model_fingerprint:
        notes.append("the model weights are the same as the baseline's.")
    return notes


def keras_backend_of(adapter: Any) -> str | None:
    """The Keras backend that runs the model of `adapter` (None: not a Keras model)."""
    backend = getattr(adapter, "backend", None)
    return backend if isinstance(backend, str) else None


def _of_output(output: str) -> str:
    """' of price' naming the explained output in a headline; a bare number is a class label
    (a scikit-learn classifier's classes_), which reads 'of class 1' rather than 'of 1'."""
    return "" if output == "output" else f" of {readable_output(output)}"

