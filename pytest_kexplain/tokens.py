"""Token ids: checking them, and naming them through a vocabulary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pytest_kexplain.adapters.multi_io import NAME_SEPARATOR, InputLayout
from pytest_kexplain.errors import InvalidArgument
from pytest_kexplain.groups import Players

DEFAULT_PAD_ID = 0


def vocabulary_lookup(vocabulary: Any) -> dict[int, str]:
    """id -> token string from a list (index = id), {id: token} or {token: id} mapping."""
    if isinstance(vocabulary, Mapping):
        items = list(vocabulary.items())
        if items and all(isinstance(k, str) for k, _ in items):
            items = [(v, k) for k, v in items]  # a word index: token -> id
        lookup = {}
        for key, token in items:
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
                raise InvalidArgument(
                    f"vocabulary maps {key!r} to {token!r}; it must map integer ids to token "
                    "strings (or token strings to ids).")
            lookup[int(key)] = str(token)
        return lookup
    if isinstance(vocabulary, np.ndarray) and vocabulary.ndim == 1:
        vocabulary = vocabulary.tolist()  # an array of token strings, as read from a file
    if isinstance(vocabulary, (str, bytes)) or not isinstance(vocabulary, Sequence):
        raise InvalidArgument(
            "vocabulary must be a list of tokens (position = id) or a dict of id -> token, got "
            f"{type(vocabulary).__name__}.")
    return {i: str(token) for i, token in enumerate(vocabulary)}


def check_token_ids(ids: np.ndarray, input_dim: int | None, description: str) -> None:
    """Token models take whole-number ids in [0, input_dim): say which row breaks that."""
    whole = ids == np.round(ids)
    if not whole.all():
        row = int(np.argwhere(~whole.reshape(len(ids), -1))[0, 0])
        raise InvalidArgument(
            f"{description} starts with an Embedding layer, so X must hold integer token ids; "
            f"row {row} holds a non-integer value.")
    if input_dim is not None and (ids.min() < 0 or ids.max() >= input_dim):
        bad = ids.reshape(len(ids), -1)
        row = int(np.argwhere((bad < 0) | (bad >= input_dim))[0, 0])
        raise InvalidArgument(
            f"X holds token id {int(ids.max() if ids.max() >= input_dim else ids.min())} (row "
            f"{row}) but the Embedding of {description} has input_dim={input_dim}: ids must lie "
            f"in 0..{input_dim - 1}.")


def vocabulary_players(vocabulary: Any, ids: np.ndarray) -> Players:
    """One player per token string appearing in X: each row's positions grouped by token."""
    lookup = vocabulary_lookup(vocabulary)
    flat = ids.reshape(len(ids), -1).astype(np.int64)
    distinct = np.unique(flat)
    tokens = [lookup.get(int(i), f"[{int(i)}]") for i in distinct]
    names = list(dict.fromkeys(tokens))  # several ids may share a string
    position = {name: k for k, name in enumerate(names)}
    player_of_id = np.array([position[t] for t in tokens])
    assignment = player_of_id[np.searchsorted(distinct, flat)]
    return Players(tuple(names), assignment)


#: how a pad position is named when the vocabulary has no (or an empty) string for the pad id
PAD_NAME = "<pad>"


def token_names(vocabulary: Any, ids: np.ndarray, pad_id: int | None
                ) -> tuple[tuple[str, ...], ...]:
    """Each sample's token string at every position, in reading order.

    Ids the vocabulary lacks read ``[id]``; positions holding the pad id read the
    vocabulary's string for it, or ``<pad>`` when it has none (Keras' ``TextVectorization``
    names it ``""``).
    """
    lookup = vocabulary_lookup(vocabulary)
    if pad_id is not None and not lookup.get(int(pad_id)):
        lookup[int(pad_id)] = PAD_NAME
    flat = ids.reshape(len(ids), -1).astype(np.int64)
    return tuple(tuple(lookup.get(int(i), f"[{int(i)}]") for i in row) for row in flat)


# -- models with several inputs -----------------------------------------------------------------

def is_per_input(vocabulary: Any) -> bool:
    """Whether vocabulary= is given per input ({input name: vocabulary}) rather than once."""
    return (isinstance(vocabulary, Mapping) and len(vocabulary) > 0
            and all(isinstance(key, str) for key in vocabulary)
            and all(isinstance(value, (Mapping, np.ndarray)) or (
                isinstance(value, Sequence) and not isinstance(value, (str, bytes)))
                for value in vocabulary.values()))


def _raw_part(X: Any, names: Sequence[str], position: int) -> Any:
    if isinstance(X, Mapping):
        return X.get(names[position])
    if isinstance(X, (list, tuple)) and len(X) == len(names):
        return X[position]
    return None


def id_inputs(layout: InputLayout, X: Any = None) -> tuple[str, ...]:
    """The inputs holding token ids: declared integer by the model, or (when the model
    declares none) given as integer arrays."""
    declared = tuple(name for name, dtype in zip(layout.names, layout.dtypes)
                     if np.issubdtype(np.dtype(dtype), np.integer))
    if declared:
        return declared
    return tuple(name for i, name in enumerate(layout.names)
                 if np.issubdtype(getattr(_raw_part(X, layout.names, i), "dtype", np.float64),
                                  np.integer))


def input_vocabularies(vocabulary: Any, layout: InputLayout, X: Any = None) -> dict[str, Any]:
    """{input name: vocabulary} for a model with several inputs, from vocabulary= given once
    (the one input holding token ids) or per input; anything ambiguous is a usage error."""
    inputs = ", ".join(map(repr, layout.names))
    if is_per_input(vocabulary):
        unknown = [name for name in vocabulary if name not in layout.names]
        if unknown:
            raise InvalidArgument(
                f"vocabulary= names {', '.join(map(repr, unknown))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not an input of the model; its inputs "
                f"are {inputs}.")
        return {name: vocabulary[name] for name in layout.names if name in vocabulary}
    holding_ids = id_inputs(layout, X)
    if len(holding_ids) == 1:
        return {holding_ids[0]: vocabulary}
    if not holding_ids:
        raise InvalidArgument(
            f"vocabulary= names token ids, but none of the model's inputs ({inputs}) holds "
            "integer ids; give vocabulary={input name: vocabulary} for the input of token ids, "
            "or leave vocabulary= out.")
    example = ", ".join(f"{name!r}: vocab_{name}" for name in holding_ids)
    raise InvalidArgument(
        f"vocabulary= is ambiguous: {len(holding_ids)} inputs hold token ids "
        f"({', '.join(map(repr, holding_ids))}); give one vocabulary per input as a dict, "
        f"vocabulary={{{example}}} (the same list twice for inputs sharing an Embedding).")


def multi_input_players(vocabularies: Mapping[str, Any], array: np.ndarray,
                        feature_names: Sequence[str], layout: InputLayout) -> Players:
    """The players of a model with several inputs explained with vocabularies: each token
    input's positions grouped per token string (``input:token``), every other feature on its
    own (its qualified name)."""
    n = len(array)
    names: list[str] = []
    assignment = np.empty((n, layout.n_features), dtype=np.int64)
    for name, (start, stop) in zip(layout.names, layout.bounds):
        if name not in vocabularies:
            for column in range(start, stop):
                assignment[:, column] = len(names)
                names.append(feature_names[column])
            continue
        ids = array[:, start:stop]
        if not np.array_equal(ids, np.round(ids)):
            row = int(np.argwhere(ids != np.round(ids))[0, 0])
            raise InvalidArgument(
                f"vocabulary= names the token ids of input {name!r}, but row {row} of it holds "
                "a non-integer value; pass the ids themselves.")
        tokens = vocabulary_players(vocabularies[name], ids)
        assignment[:, start:stop] = tokens.assignment + len(names)
        names.extend(f"{name}{NAME_SEPARATOR}{token}" for token in tokens.names)
    return Players(tuple(names), assignment)


def token_players(vocabulary: Any, array: np.ndarray, feature_names: Sequence[str],
                  layout: InputLayout | None, X: Any = None) -> Players:
    """The players vocabulary= makes of X: one per token string (``input:token`` beside the
    other inputs' features for a model with several inputs)."""
    if layout is None:
        if is_per_input(vocabulary):
            raise InvalidArgument(
                "vocabulary= is a dict of vocabularies per input ("
                f"{', '.join(map(repr, vocabulary))}), but X is a single array; pass the "
                "vocabulary itself (a list of tokens, position = id, or an id -> token dict).")
        return vocabulary_players(vocabulary, array)
    return multi_input_players(input_vocabularies(vocabulary, layout, X), array, feature_names,
                               layout)


def multi_input_token_names(vocabularies: Mapping[str, Any], array: np.ndarray,
                            layout: InputLayout, pad_id: int | None
                            ) -> tuple[tuple[str, ...], ...]:
    """Each sample's ``input:token`` string at every position of its token inputs, in input
    order (what ``token_values`` holds the attributions of)."""
    rows: list[list[str]] = [[] for _ in range(len(array))]
    for name, (start, stop) in zip(layout.names, layout.bounds):
        if name in vocabularies:
            named = token_names(vocabularies[name], array[:, start:stop], pad_id)
            for row, tokens in zip(rows, named):
                row.extend(f"{name}{NAME_SEPARATOR}{token}" for token in tokens)
    return tuple(tuple(row) for row in rows)


def token_columns(vocabularies: Mapping[str, Any], layout: InputLayout) -> np.ndarray:
    """The flat columns of the token inputs, in input order."""
    return np.concatenate([np.arange(start, stop) for name, (start, stop)
                           in zip(layout.names, layout.bounds) if name in vocabularies])
