"""Token ids: checking them, and naming them through a vocabulary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
