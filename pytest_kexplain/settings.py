"""Per-test explanation defaults (from ini options and the `kexplain` marker).

Stdlib only: the plugin sets them around each test; checks and the `kexplain` fixture read
them, so `@pytest.mark.kexplain(method="shap")` changes every check in that test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: keyword arguments of explain() that a marker or ini option may default
EXPLAIN_KEYWORDS = ("method", "seed", "target", "output", "class_names", "batch_size", "groups",
                    "vocabulary", "pad_id")

#: the largest seed every explainer's random generator takes (LIME's NumPy RandomState: 2**32 - 1)
MAX_SEED = 2**32 - 1

#: every name explain(method=...) accepts (tests/test_plugin.py keeps it equal to the
#: registry's), so that an ini option or marker naming another is refused at start-up
#: without importing the explainers
METHOD_NAMES = ("auto", "gradcam", "gradcam++", "gradient_x_input", "integrated_gradients",
                "lime", "occlusion", "permutation", "saliency", "shap", "smoothgrad")

_active: dict[str, Any] = {}


def active_defaults() -> dict[str, Any]:
    """The defaults in force for the running test (empty outside pytest)."""
    return dict(_active)


@contextmanager
def defaults_in_force(defaults: Mapping[str, Any]) -> Iterator[None]:
    """Make `defaults` the active ones for the duration of the block."""
    global _active
    previous = _active
    _active = dict(defaults)
    try:
        yield
    finally:
        _active = previous


def with_defaults(kwargs: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Caller's explain() keywords, with the active defaults filling what is not given."""
    source = active_defaults() if defaults is None else defaults
    merged = {k: v for k, v in source.items() if k in EXPLAIN_KEYWORDS or k == "options"}
    options = merged.pop("options", None) or {}
    return {**options, **merged, **kwargs}
