"""Features whose values are categories, and the label of each row's category.

A DataFrame's category (or string) column reaches the model, and ``Explanation.data``, as
category codes; a group of one-hot columns as the mean of its members. A reader wants the
category itself ("east = region", not "0 = region"), as shap's own explainers show a
user's values through ``display_data``: ``Explanation.categories`` keeps each such feature's
codes and labels, and ``Explanation.to_shap()`` turns them into ``display_data``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: what a row shows whose category is missing (a NaN in a category column)
MISSING = "<missing>"
#: what a row shows where no column of a one-hot group is set (a dropped reference level)
NONE_SET = "<none>"


@dataclass(frozen=True)
class CategoryCodes:
    """One categorical feature: each row's code (-1: none) and the label of every code."""

    labels: tuple[str, ...]
    codes: tuple[int, ...]
    #: what a row whose code is -1 shows
    missing: str = MISSING

    def display(self) -> list[str]:
        """Each row's label."""
        return [self.labels[code] if 0 <= code < len(self.labels) else self.missing
                for code in self.codes]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields (for storage)."""
        return {"labels": list(self.labels), "codes": list(self.codes), "missing": self.missing}

    @staticmethod
    def from_json(stored: Mapping[str, Any]) -> CategoryCodes:
        """The inverse of ``as_json``."""
        return CategoryCodes(labels=tuple(str(label) for label in stored["labels"]),
                             codes=tuple(int(code) for code in stored["codes"]),
                             missing=str(stored.get("missing", MISSING)))


def column_categories(x: np.ndarray, columns: Sequence[tuple[int, tuple[str, ...]]],
                      feature_names: Sequence[str]) -> dict[str, CategoryCodes]:
    """The category columns of flat rows x: {feature name: codes and labels}."""
    flat = x.reshape(len(x), -1)
    return {feature_names[position]: CategoryCodes(labels, _codes(flat[:, position]))
            for position, labels in columns}


def player_categories(x: np.ndarray, columns: Sequence[tuple[int, tuple[str, ...]]],
                      feature_names: Sequence[str], assignment: np.ndarray,
                      player_names: Sequence[str], tabular: np.ndarray
                      ) -> dict[str, CategoryCodes]:
    """The categorical players of flat rows x under a shared group assignment: a category
    column left ungrouped, and a group of one-hot table columns (``tabular``: which flat
    features are columns of a table), labelled by the member set."""
    flat = x.reshape(len(x), -1)
    labels_at = dict(columns)
    found: dict[str, CategoryCodes] = {}
    for player, name in enumerate(player_names):
        members = np.flatnonzero(assignment == player)
        if len(members) == 1 and int(members[0]) in labels_at:
            found[name] = CategoryCodes(labels_at[int(members[0])], _codes(flat[:, members[0]]))
        elif len(members) > 1 and tabular[members].all() and _one_hot(flat[:, members]):
            set_any = flat[:, members].sum(axis=1) > 0
            codes = np.where(set_any, flat[:, members].argmax(axis=1), -1)
            found[name] = CategoryCodes(tuple(feature_names[int(m)] for m in members),
                                        tuple(int(c) for c in codes), NONE_SET)
    return found


def _one_hot(block: np.ndarray) -> bool:
    """Whether every value is 0 or 1, at most one set per row, and some row sets one."""
    return bool(np.isin(block, (0.0, 1.0)).all() and (block.sum(axis=1) <= 1).all()
                and block.any())


def _codes(column: np.ndarray) -> tuple[int, ...]:
    return tuple(int(code) if np.isfinite(code) else -1 for code in column)
