"""The object behind the `explanation_baseline` fixture: compare with, or rewrite, a baseline."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kexplain.adapters import get_adapter
from pytest_kexplain.baselines import BaselineError, store
from pytest_kexplain.baselines import format as baseline_format
from pytest_kexplain.baselines.compare import Comparison, compare
from pytest_kexplain.baselines.messages import drift_message, update_command
from pytest_kexplain.baselines.tolerances import resolve_tolerances, split_tolerances
from pytest_kexplain.cache import array_digest
from pytest_kexplain.errors import CheckFailed, InvalidArgument
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
    record: Callable[[str, str], None] = field(default=lambda path, status: None, repr=False)
    _checked: set[str] = field(default_factory=set, repr=False)

    @recorded("explanation_baseline.assert_match")
    def assert_match(self, model: Any, X: Any, *, method: str | None = None,
                     name: str | None = None, **kwargs: Any) -> Comparison | None:
        """Fail if model's explanation of X drifted from the baseline (--kexplain-update rewrites it).

        Keywords are explain()'s (feature_names, background, target, seed, options) and the
        tolerances (rank_correlation, rank_metric, top_k, top_k_overlap, max_share_change,
        min_top_importance, sample_similarity). Returns the comparison, or None when the
        baseline was rewritten.
        """
        __tracebackhide__ = True
        stem = self._claim(name)
        call_tolerances, explain_kwargs = split_tolerances(kwargs)
        tolerances = resolve_tolerances((self.defaults, DEFAULTS_SOURCE),
                                        (call_tolerances, "assert_match()"))
        baseline = None if self.update else self._load(stem, name)  # fail fast, before explaining
        if method is not None:
            explain_kwargs["method"] = method
        current = self._explain(model, X, name, explain_kwargs)
        if baseline is None:
            self._save(stem, current)
            return None
        path = self._display(self.directory / f"{stem}.json")
        _check_compatible(baseline, current, path, self.nodeid)
        comparison = compare(current.feature_names, baseline.importance, current.importance,
                             tolerances, baseline.values, current.values)
        note(baseline=path, baseline_status="compared", baseline_values=baseline.values,
             current_values=current.values)
        if not comparison.passed:
            raise CheckFailed(drift_message(
                comparison,
                headline=f"explanation drifted from the baseline {path}",
                accept_hint=("If the change is intended, accept it (then review and commit the "
                             f"file):\n    {update_command(self.nodeid)}"),
                notes=_context_notes(baseline, current),
            ), comparison)
        return comparison

    def _explain(self, model: Any, X: Any, name: str | None,
                 explain_kwargs: dict[str, Any]) -> baseline_format.Baseline:
        """The current explanation, in the form a baseline file records."""
        from pytest_kexplain.api import explain

        explanation = explain(model, X, **with_defaults(explain_kwargs, self.defaults))
        _, adapter = get_adapter(model)
        return baseline_format.from_explanation(
            explanation, test=self.nodeid, name=name, model_description=adapter.description,
            model_fingerprint=adapter.fingerprint(),
            background_fingerprint=_background_fingerprint(explain_kwargs.get("background")),
        )

    def _claim(self, name: str | None) -> str:
        """The file stem of this baseline; each one may be checked once per test."""
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidArgument(f"name must be a non-empty string, got {name!r}.")
        stem = store.baseline_stem(self.nodeid, name)
        if stem in self._checked:
            which = "without a name" if name is None else f"named {name!r}"
            raise InvalidArgument(
                f"this test already checked a baseline {which}; give each assert_match() in "
                "one test its own name=, e.g. assert_match(model, X, name='holdout')."
            )
        self._checked.add(stem)
        return stem

    def _save(self, stem: str, current: baseline_format.Baseline) -> None:
        rendered = baseline_format.render(current, stem)
        result = store.save(self.directory, stem, rendered.json_text, rendered.sidecar_name,
                            rendered.sidecar_bytes)
        self.record(self._display(result.path), result.status)
        note(baseline=self._display(result.path), baseline_status=result.status,
             current_values=current.values, current_importance=current.importance,
             feature_names_current=current.feature_names)

    def _load(self, stem: str, name: str | None) -> baseline_format.Baseline:
        __tracebackhide__ = True
        path = self.directory / f"{stem}.json"
        shown = self._display(path)
        if not path.exists():
            which = "" if name is None else f" named {name!r}"
            raise BaselineError(
                f"no explanation baseline{which} for this test yet: {shown} does not exist.\n"
                f"Create it by running\n    {update_command(self.nodeid)}\n"
                "then review the file and commit it with your tests."
            )
        text = store.read_text(path)
        try:
            return baseline_format.parse(text, shown, lambda file: (self.directory / file).read_bytes())
        except BaselineError as error:
            raise BaselineError(
                f"{error}\nIt was left as it is. Fix it, or rewrite it from the current model with\n"
                f"    {update_command(self.nodeid)}"
            ) from None

    def _display(self, path: Path) -> str:
        """A path relative to the rootdir when possible (stable across machines and workers)."""
        try:
            return Path(os.path.relpath(path, self.rootdir)).as_posix()
        except ValueError:  # another drive on Windows
            return str(path)


def _background_fingerprint(background: Any) -> str | None:
    if background is None:
        return None
    from pytest_kexplain.inputs import prepare_input

    return array_digest(prepare_input(background, name="background").array)


def _check_compatible(baseline: baseline_format.Baseline, current: baseline_format.Baseline, path: str,
                      nodeid: str) -> None:
    """Raise BaselineError if the baseline describes another kind of explanation."""
    __tracebackhide__ = True
    problems = []
    if baseline.method != current.method:
        problems.append(f"method: the baseline used {baseline.method!r}, this check uses {current.method!r}")
    if baseline.output != current.output:
        problems.append(f"explained output: the baseline explains {baseline.output!r}, "
                        f"this check explains {current.output!r}")
    if baseline.data_shape != current.data_shape:
        problems.append(f"input shape: the baseline was made on X of shape {baseline.data_shape}, "
                        f"this X has shape {current.data_shape}")
    if baseline.feature_names != current.feature_names:
        problems.append("feature names: " + _name_difference(baseline.feature_names, current.feature_names))
    if problems:
        raise BaselineError(
            f"explanation baseline {path} was made for a different check:\n"
            + "".join(f"  - {p}\n" for p in problems)
            + f"It was left as it is. If this change is intended, rewrite it with\n"
              f"    {update_command(nodeid)}"
        )


def _name_difference(before: tuple[str, ...], after: tuple[str, ...]) -> str:
    missing = [n for n in before if n not in after]
    added = [n for n in after if n not in before]
    if not missing and not added:
        return f"same names in another order: baseline {list(before)}, now {list(after)}"
    parts = []
    if missing:
        parts.append(f"in the baseline only: {', '.join(missing)}")
    if added:
        parts.append(f"new: {', '.join(added)}")
    return "; ".join(parts)


def _context_notes(baseline: baseline_format.Baseline, current: baseline_format.Baseline) -> list[str]:
    """Facts that help explain a drift: other data, other options, other package versions."""
    notes = []
    if baseline.data_fingerprint != current.data_fingerprint:
        notes.append("X differs from the data the baseline was made on (same shape, other values).")
    if baseline.background_fingerprint != current.background_fingerprint:
        notes.append("the background data differs from the baseline's.")
    if dict(baseline.options) != dict(current.options):
        notes.append(f"explainer options changed: baseline {dict(baseline.options)}, "
                     f"now {dict(current.options)}.")
    changed = {k: (baseline.versions.get(k), v) for k, v in current.versions.items()
               if baseline.versions.get(k) != v}
    if changed:
        notes.append("package versions changed: " + ", ".join(
            f"{k} {old or '-'} -> {new}" for k, (old, new) in sorted(changed.items())))
    if baseline.model_fingerprint is not None and baseline.model_fingerprint == current.model_fingerprint:
        notes.append("the model weights are the same as the baseline's.")
    return notes
