"""The object behind the `kexplain` fixture."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_kexplain.settings import with_defaults


@dataclass
class KexplainFixture:
    """explain() with the test's marker and ini defaults applied, memoised for the session."""

    defaults: Mapping[str, Any] = field(default_factory=dict)

    def explain(self, model: Any, X: Any, **kwargs: Any) -> Any:
        """Explain model on X; keywords as for pytest_kexplain.explain()."""
        from pytest_kexplain.api import explain

        return explain(model, X, **with_defaults(kwargs, self.defaults))

    def cache_info(self) -> dict[str, int]:
        """Hits and misses of the session's explanation cache."""
        from pytest_kexplain.cache import SESSION_CACHE

        return {"hits": SESSION_CACHE.hits, "misses": SESSION_CACHE.misses}
