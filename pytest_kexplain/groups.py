"""Feature groups: several raw features explained as one player (one-hot columns, image
patches, time steps, labelled image regions).

A group specification is resolved once per explanation into `Players`: for every raw feature
(flattened sample position) the index of the player it belongs to, shared by all rows or
given per row (a label mask per image). Masking methods (SHAP, permutation, occlusion, LIME)
switch a player's features on and off together; gradient methods sum over a player's features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_kexplain.errors import InvalidArgument

TIMESTEPS = "timesteps"
#: whether samples are laid out (channels, *spatial): one flag, or one per input of a model
#: with several (a Grid patch or a mask region then holds every channel of its pixels)
ChannelsFirst = bool | tuple[bool, ...]
#: the player holding every feature of an image or sequence that no named group claims
REST = "rest"


@dataclass(frozen=True)
class Grid:
    """Split each image into rows x cols patches, one player per patch (`patch(r,c)`), each
    holding every channel of its pixels (channels last, or first for a channels_first model)."""

    rows: int
    cols: int

    def __post_init__(self) -> None:
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidArgument(f"Grid {name} must be a positive integer, got {value!r}.")


@dataclass(frozen=True, eq=False)
class Players:
    """Which player every raw feature belongs to: `assignment` is (d,) or (n, d) of indices."""

    names: tuple[str, ...]
    assignment: np.ndarray

    @property
    def n_players(self) -> int:
        """Number of players (groups and ungrouped features)."""
        return len(self.names)

    @property
    def per_row(self) -> bool:
        """Whether rows have their own assignment (a label mask per image)."""
        return self.assignment.ndim == 2

    def rows(self, rows: slice | np.ndarray, n_rows: int) -> np.ndarray:
        """The (r, d) assignment of the selected rows (n_rows: how many rows are selected)."""
        if self.per_row:
            return self.assignment[rows]
        return np.broadcast_to(self.assignment, (n_rows, len(self.assignment)))

    def feature_masks(self, player_masks: np.ndarray, rows: slice | np.ndarray | None = None
                      ) -> np.ndarray:
        """Expand player masks (r, K, P) or shared (K, P) to feature masks (r, K, d) / (K, d)."""
        if not self.per_row:
            return np.take(player_masks, self.assignment, axis=-1)
        assignment = self.assignment if rows is None else self.assignment[rows]
        if player_masks.ndim == 2:
            player_masks = np.broadcast_to(player_masks, (len(assignment), *player_masks.shape))
        index = np.broadcast_to(assignment[:, None, :],
                                (len(assignment), player_masks.shape[1], assignment.shape[1]))
        return np.take_along_axis(player_masks, index, axis=2)

    def membership(self) -> np.ndarray:
        """(P, d) boolean matrix of a shared assignment."""
        if self.per_row:
            raise ValueError("membership() needs a shared assignment")
        return self.assignment[None, :] == np.arange(self.n_players)[:, None]

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum per-feature values (n, *sample_shape) over each player's features: (n, P)."""
        flat = values.reshape(len(values), -1)
        n, p = len(flat), self.n_players
        if not self.per_row:
            out = np.zeros((n, p))
            np.add.at(out.T, self.assignment, flat.T)
            return out
        index = self.assignment + p * np.arange(n)[:, None]
        return np.bincount(index.ravel(), weights=flat.ravel(), minlength=n * p).reshape(n, p)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of each player's features per row (what an Explanation shows as its data)."""
        ones = np.ones((len(values), self.assignment.shape[-1]))
        counts = self.sum(ones)
        return self.sum(values) / np.maximum(counts, 1)

    def sizes(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Number of features of each player, (P,) shared or (r, P) per row."""
        if not self.per_row:
            return np.bincount(self.assignment, minlength=self.n_players)
        assignment = self.assignment if rows is None else self.assignment[rows]
        ones = np.ones(assignment.shape)
        return Players(self.names, assignment).sum(ones)

    def digest_parts(self) -> tuple[Any, ...]:
        """What identifies the grouping in a cache key."""
        return (self.names, self.assignment.shape, self.assignment.tobytes())


def _spatial_shape(sample_shape: tuple[int, ...], shown: tuple[int, ...]) -> tuple[int, int]:
    if len(sample_shape) not in (2, 3):
        layout = ("(channels, height, width) for a model that reads its images channels "
                  "first" if shown != sample_shape else "(height, width) or (height, width, "
                  "channels)")
        volume = ("; a volume has no one meaning of rows and columns (a patch through "
                  "every depth slice, or one per slice), so give a dict of boolean masks of "
                  f"the samples' shape {shown} (one per block), or groups='timesteps' for one "
                  "group per depth slice" if len(sample_shape) == 4 else "")
        raise InvalidArgument(
            f"groups=Grid(...) splits images of shape {layout}; the samples here have shape "
            f"{shown}{volume}."
        )
    return sample_shape[0], sample_shape[1]


def _channels_last(sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of (channels, *spatial) samples with the channel axis moved last."""
    return (*sample_shape[1:], sample_shape[0])


def _moved_channels_first(players: Players, sample_shape: tuple[int, ...]) -> Players:
    """Players made on channels-last samples, for the same samples laid out `sample_shape`
    (channels first): each feature keeps the player of its channels-last twin."""
    rows = players.assignment.shape[:-1]
    last = players.assignment.reshape(*rows, *_channels_last(sample_shape))
    moved = np.moveaxis(last, -1, len(rows))
    return Players(players.names, np.ascontiguousarray(moved.reshape(*rows, -1)))


def players_channels_last(players: Players, sample_shape: tuple[int, ...]) -> Players:
    """Players of (channels, *spatial) samples of `sample_shape`, for the same samples seen
    with the channel axis last (the inverse of _moved_channels_first)."""
    rows = players.assignment.shape[:-1]
    moved = np.moveaxis(players.assignment.reshape(*rows, *sample_shape), len(rows), -1)
    return Players(players.names, np.ascontiguousarray(moved.reshape(*rows, -1)))


def _grid(grid: Grid, sample_shape: tuple[int, ...],
          shown: tuple[int, ...] | None = None) -> Players:
    h, w = _spatial_shape(sample_shape, shown or sample_shape)
    if grid.rows > h or grid.cols > w:
        raise InvalidArgument(
            f"Grid({grid.rows}, {grid.cols}) has more patches than the image has pixels "
            f"({h} x {w}); use at most Grid({h}, {w})."
        )
    band = (np.arange(h) * grid.rows) // h
    column = (np.arange(w) * grid.cols) // w
    cell = band[:, None] * grid.cols + column[None, :]
    cell = np.broadcast_to(cell.reshape(h, w, *([1] * (len(sample_shape) - 2))), sample_shape)
    names = tuple(f"patch({r},{c})" for r in range(grid.rows) for c in range(grid.cols))
    return Players(names, np.ascontiguousarray(cell.reshape(-1), dtype=np.int64))


def _timesteps(sample_shape: tuple[int, ...]) -> Players:
    if len(sample_shape) < 1:
        raise InvalidArgument("groups='timesteps' needs sequence samples of shape (steps, ...).")
    steps = sample_shape[0]
    assignment = np.repeat(np.arange(steps), int(np.prod(sample_shape[1:], dtype=np.int64)))
    return Players(tuple(f"t{i}" for i in range(steps)), assignment.astype(np.int64))


def _member_mask(name: str, members: Any, sample_shape: tuple[int, ...],
                 feature_names: Sequence[str], n_rows: int,
                 channels_first: bool = False) -> np.ndarray:
    """(d,) or (n, d) boolean mask of one group's raw features."""
    d = int(np.prod(sample_shape, dtype=np.int64))
    if isinstance(members, (Grid, Mapping)):
        raise InvalidArgument(
            f"group {name!r} is {members!r}, which splits one input of a model with several "
            f"into groups of its own; {name!r} is no input of this model's data, so give the "
            "group a list of feature names, or key it by an input's name.")
    if isinstance(members, str):
        members = [members]
    if isinstance(members, np.ndarray) and members.dtype == bool:
        return _boolean_mask(name, members, sample_shape, n_rows, channels_first)
    _reject_numeric_mask(name, members, d)
    members = list(members) if not isinstance(members, np.ndarray) else members.tolist()
    if not members:
        raise InvalidArgument(f"group {name!r} is empty; give it at least one feature.")
    mask = np.zeros(d, dtype=bool)
    position = {feature: i for i, feature in enumerate(feature_names)}
    for member in members:
        if isinstance(member, str):
            if member not in position:
                from difflib import get_close_matches

                close = get_close_matches(member, list(feature_names), n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                if not close:  # say what X's features are called (unnamed ones are x0, x1, ...)
                    shown = ", ".join(map(repr, list(feature_names)[:12]))
                    more = ", ..." if len(feature_names) > 12 else ""
                    hint = (f" X's features are {shown}{more}. (Names come from feature_names=, "
                            "or a DataFrame's columns; unnamed features are x0, x1, ...)")
                raise InvalidArgument(
                    f"group {name!r} names {member!r}, which is not a feature of X.{hint}")
            mask[position[member]] = True
        elif isinstance(member, (int, np.integer)) and not isinstance(member, bool):
            if not 0 <= member < d:
                raise InvalidArgument(
                    f"group {name!r} holds feature index {member}, outside 0..{d - 1}.")
            mask[int(member)] = True
        else:
            raise InvalidArgument(
                f"group {name!r} must list feature names or flat feature indices, or be a "
                f"boolean mask; got the entry {member!r}.")
    return mask


def _reject_numeric_mask(name: str, members: Any, d: int) -> None:
    """A 0/1 mask given as numbers would be read as flat feature indices 0 and 1 (a mask
    [0, 0, 1, 1] would group features 0 and 1, not 2 and 3): a usage error, not a guess."""
    array = np.asarray(members) if isinstance(members, (np.ndarray, list, tuple)) else None
    if array is None or array.dtype.kind not in "iuf" or array.size < 2:
        return
    zeros_and_ones = bool(np.isin(array, (0, 1)).all())
    repeated = len(np.unique(array)) < array.size  # indices never repeat, mask values do
    if array.ndim > 1 or (zeros_and_ones and repeated and array.size == d):
        raise InvalidArgument(
            f"group {name!r} is a {'0/1' if zeros_and_ones else 'numeric'} array of shape "
            f"{array.shape}: a mask must be boolean (pass mask.astype(bool)), and feature "
            "indices a flat list of distinct indices.")


def _mask_shapes(sample_shape: tuple[int, ...], n_rows: int,
                 channels_first: bool) -> dict[tuple[int, ...], bool]:
    """The shapes a mask may have, each saying whether it holds one mask per row."""
    shapes = {sample_shape: False, (n_rows, *sample_shape): True}
    if len(sample_shape) == 3:  # (h, w) masks cover every channel
        spatial = sample_shape[1:] if channels_first else sample_shape[:2]
        shapes.update({spatial: False, (n_rows, *spatial): True})
    return shapes


def _check_mask_shape(what: str, shape: tuple[int, ...], sample_shape: tuple[int, ...],
                      n_rows: int, channels_first: bool) -> bool:
    """Whether a mask of this shape holds one mask per row; a usage error if it fits none."""
    shapes = _mask_shapes(sample_shape, n_rows, channels_first)
    if shape not in shapes:
        accepted = " or ".join(str(s) for s in shapes)
        raise InvalidArgument(
            f"{what} has shape {shape}; it must be {accepted} (one mask for every sample, or "
            "one per sample)." + _layout_hint(shape, sample_shape, channels_first))
    return shapes[shape]


def _boolean_mask(name: str, mask: np.ndarray, sample_shape: tuple[int, ...],
                  n_rows: int, channels_first: bool = False) -> np.ndarray:
    per_row = _check_mask_shape(f"the boolean mask of group {name!r}", mask.shape,
                                sample_shape, n_rows, channels_first)
    missing = len(sample_shape) + per_row - mask.ndim  # the channel axis of a (h, w) mask
    at = int(per_row) if channels_first else mask.ndim
    full = np.broadcast_to(
        mask.reshape(*mask.shape[:at], *([1] * missing), *mask.shape[at:]),
        ((n_rows,) if per_row else ()) + sample_shape)
    flat = full.reshape(n_rows, -1) if per_row else full.reshape(-1)
    if not flat.any():
        raise InvalidArgument(
            f"group {name!r} is empty (its mask selects nothing in any sample); every group "
            "needs at least one feature.")
    # A per-sample mask may leave a group out of some samples (a label map where an image
    # lacks a label): there it is a player that changes nothing and gets exactly 0.
    return flat


def _layout_hint(shape: tuple[int, ...], sample_shape: tuple[int, ...],
                 channels_first: bool) -> str:
    """A mask laid out channels last for a model that reads its samples channels first."""
    if not channels_first or shape[-len(sample_shape):] != _channels_last(sample_shape):
        return ""
    axes = "height, width" if len(sample_shape) == 3 else "*spatial"
    return (f" The model reads its samples channels first, as (channels, {axes}) "
            f"{sample_shape}: give a (height, width) mask, or move the mask's channel axis "
            f"first, np.moveaxis(mask, -1, {-len(sample_shape)}).")


def _from_labels(labels: np.ndarray, sample_shape: tuple[int, ...], n_rows: int,
                 channels_first: bool = False) -> Players:
    if not np.issubdtype(labels.dtype, np.integer):
        raise InvalidArgument(
            f"a label mask must hold integer labels, got dtype {labels.dtype}; pass a dict "
            "of named boolean masks instead.")
    _check_mask_shape("the integer label mask", labels.shape, sample_shape, n_rows,
                      channels_first)
    values = np.unique(labels)
    groups = {f"region {int(v)}": labels == v for v in values}
    return _from_mapping(groups, sample_shape, (), n_rows, channels_first)


def _from_mapping(groups: Mapping[str, Any], sample_shape: tuple[int, ...],
                  feature_names: Sequence[str], n_rows: int,
                  channels_first: bool = False) -> Players:
    if not groups:
        raise InvalidArgument("groups is empty; name at least one group.")
    d = int(np.prod(sample_shape, dtype=np.int64))
    masks = []
    for name, members in groups.items():
        if not isinstance(name, str):
            raise InvalidArgument(f"group names must be strings, got {name!r}.")
        masks.append(_member_mask(name, members, sample_shape, feature_names, n_rows,
                                  channels_first))
    per_row = any(m.ndim == 2 for m in masks)
    stacked = np.stack([np.broadcast_to(m, (n_rows, d)) if per_row else m for m in masks])
    counts = stacked.sum(axis=0)
    if (counts > 1).any():
        where = np.argwhere(counts > 1)[0]
        feature = int(where[-1])
        owners = [name for name, m in zip(groups, stacked) if m[tuple(where)]]
        label = feature_names[feature] if feature < len(feature_names) else f"index {feature}"
        raise InvalidArgument(
            f"feature {label!r} belongs to more than one group ({', '.join(map(repr, owners))}); "
            "each feature may be in at most one group.")
    names = list(groups)
    assignment = np.argmax(stacked, axis=0).astype(np.int64)
    uncovered = counts == 0
    if uncovered.any() and len(sample_shape) == 1:
        # Tabular data (or the flat row of several inputs): a column no group claims in any
        # row stays a player of its own; one that masks per row leave out only in some rows
        # joins the 'rest' below.
        never = uncovered.all(axis=0) if per_row else uncovered
        for feature in np.flatnonzero(never):
            assignment[..., feature] = len(names)
            names.append(feature_names[feature])
        uncovered = uncovered & ~never
    if uncovered.any():
        if REST in names:
            raise InvalidArgument(
                f"the groups leave some features uncovered, which form a group named "
                f"{REST!r}, but a group of that name exists; cover every feature.")
        assignment[uncovered] = len(names)
        names.append(REST)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgument(
            f"group names must differ from the ungrouped features' names: {', '.join(repeated)}.")
    return Players(tuple(names), assignment)


def splits_one_input(members: Any) -> bool:
    """Whether a dict entry keyed by an input's name splits that input (Grid, 'timesteps' or
    a dict of its own groups, or an integer label mask of its images) rather than being one
    group of that name."""
    label_mask = (isinstance(members, np.ndarray) and members.ndim >= 2
                  and members.dtype.kind in "iu")  # never a group's flat feature indices
    return label_mask or isinstance(members, (Grid, Mapping)) or (
        isinstance(members, str) and members == TIMESTEPS)


def flatten_input_groups(groups: Any, layout: Any, feature_names: Sequence[str],
                         n_rows: int, channels_first: ChannelsFirst = False) -> Any:
    """A model with several inputs: entries {input: Grid(...) | 'timesteps' | {group: members}}
    become that input's groups as boolean masks of the flat row, named 'input:group'; every
    other entry (a group of qualified feature names) is kept as given. `channels_first`: one
    flag per input, whether its samples are (channels, *spatial)."""
    if layout is not None and isinstance(groups, (Grid, str)):
        fitting = [name for name, shape in zip(layout.names, layout.shapes)
                   if len(shape) in ((2, 3) if isinstance(groups, Grid) else (2, 3, 4))]
        raise InvalidArgument(
            f"groups={groups!r} splits the samples of a single image or sequence input, but "
            f"the model takes several inputs ({', '.join(map(repr, layout.names))}), explained "
            f"as one flat row of {layout.n_features} features; give it for one input, e.g. "
            f"groups={{{(fitting or list(layout.names))[0]!r}: {groups!r}}} (each input by its "
            "name, beside groups of features named 'input:feature'), or name each group's "
            f"features in a dict, e.g. groups={{'part': [{feature_names[0]!r}, ...]}}.")
    if layout is not None and isinstance(groups, np.ndarray):
        _refuse_mask_of_one_input(groups, "groups=", "labels", layout, n_rows)
    if layout is not None and isinstance(groups, Mapping):
        for name, members in groups.items():
            # (keyed by an input's own name too: a boolean mask there is one group of the
            # flat row, never that input's split)
            if isinstance(members, np.ndarray) and members.dtype == bool:
                _refuse_mask_of_one_input(members, f"group {name!r}", f"{{{name!r}: mask}}",
                                          layout, n_rows)
    if layout is None or not isinstance(groups, Mapping) or not any(
            name in layout.names and splits_one_input(members)
            for name, members in groups.items()):
        return groups
    d = layout.n_features
    flat: dict[str, Any] = {}
    for name, members in groups.items():
        if name not in layout.names or not splits_one_input(members):
            flat[name] = members
            continue
        index = layout.names.index(name)
        (start, stop), shape = layout.bounds[index], layout.shapes[index]
        own_names = [feature[len(name) + 1:] for feature in feature_names[start:stop]]
        if isinstance(members, Mapping):  # its groups may name the input's features qualified
            members = {group: [m[len(name) + 1:] if isinstance(m, str)
                               and m.startswith(f"{name}:") else m for m in part]
                       if isinstance(part, (list, tuple)) else part
                       for group, part in members.items()}
        try:
            first = (channels_first[index] if isinstance(channels_first, tuple)
                     and index < len(channels_first) else channels_first is True)
            players = resolve_groups(members, shape, own_names, n_rows, channels_first=first)
        except InvalidArgument as error:
            raise InvalidArgument(f"groups[{name!r}] splits input {name!r} (samples of shape "
                                  f"{shape}): {error}") from None
        assert players is not None
        for player, player_name in enumerate(players.names):
            if isinstance(members, Mapping) and len(shape) == 1 and player_name not in members:
                continue  # an ungrouped column of a table stays a feature of its own
            qualified = f"{name}:{player_name}"
            if qualified in groups:
                raise InvalidArgument(
                    f"groups[{name!r}] makes a group {qualified!r}, and groups= names another "
                    "group the same; rename one of them.")
            mask = np.zeros((n_rows, d) if players.per_row else d, dtype=bool)
            mask[..., start:stop] = players.assignment == player
            flat[qualified] = mask
    return flat


def _refuse_mask_of_one_input(mask: np.ndarray, what: str, example: str, layout: Any,
                              n_rows: int) -> None:
    """A mask shaped like one input's samples (or its images' (h, w)), given where the flat
    rows of several inputs are split: say to key it by that input's name."""
    for name, shape in zip(layout.names, layout.shapes):
        own = ({tuple(shape), tuple(shape[:-1]), tuple(shape[1:])} if len(shape) == 3
               else {tuple(shape)})
        if mask.shape in own or (mask.shape[:1] == (n_rows,) and mask.shape[1:] in own):
            raise InvalidArgument(
                f"{what} is a mask of shape {mask.shape}, which fits the samples of input {name!r}, but the "
                f"model takes several inputs ({', '.join(map(repr, layout.names))}), explained "
                f"as one flat row of {layout.n_features} features; give it for that input, "
                f"groups={{{name!r}: {example}}} (each input by its name, beside groups of "
                "features named 'input:feature').")


def resolve_groups(groups: Any, sample_shape: tuple[int, ...], feature_names: Sequence[str],
                   n_rows: int, layout: Any = None,
                   channels_first: ChannelsFirst = False) -> Players | None:
    """Turn a `groups=` argument into Players (None when no grouping was asked for); `layout`
    (a model with several inputs) lets a dict split each input on its own. On samples laid
    out (channels, *spatial) (`channels_first`) a Grid patch, a time step or a (height, width)
    mask's region holds every channel of its positions, as on the channels-last twin."""
    if groups is None:
        return None
    groups = flatten_input_groups(groups, layout, feature_names, n_rows, channels_first)
    first = laid_out_channels_first(channels_first, sample_shape)
    if isinstance(groups, Grid):
        if first:
            return _moved_channels_first(
                _grid(groups, _channels_last(sample_shape), sample_shape), sample_shape)
        return _grid(groups, sample_shape)
    if isinstance(groups, str):
        if groups != TIMESTEPS:
            raise InvalidArgument(
                f"groups={groups!r} is not understood; use groups='timesteps', Grid(rows, cols), "
                "an integer label mask, or a dict mapping group names to features.")
        if first:
            return _moved_channels_first(_timesteps(_channels_last(sample_shape)),
                                         sample_shape)
        return _timesteps(sample_shape)
    if isinstance(groups, Mapping):
        return _from_mapping(groups, sample_shape, feature_names, n_rows, first)
    if isinstance(groups, np.ndarray):
        return _from_labels(groups, sample_shape, n_rows, first) if groups.shape[-len(
            sample_shape):] == sample_shape or groups.ndim >= 2 else _bad_groups(groups)
    return _bad_groups(groups)


def _bad_groups(groups: Any) -> Players:
    raise InvalidArgument(
        f"groups must be a dict of group name -> features, 'timesteps', Grid(rows, cols) or an "
        f"integer label mask; got {type(groups).__name__}.")


def laid_out_channels_first(channels_first: ChannelsFirst, sample_shape: tuple[int, ...]
                            ) -> bool:
    """Whether groups split samples of this shape as (channels, *spatial): the samples' one
    flag (a NumPy boolean too; a tuple holds one flag per input of several, each input split
    on its own) says channels first, and they have at least two axes (channels and one more)."""
    return (not isinstance(channels_first, tuple) and bool(channels_first)
            and len(sample_shape) >= 2)


def repeat_rows(groups: Any, sample_shape: tuple[int, ...], feature_names: Sequence[str],
                n_rows: int, times: int, channels_first: bool = False) -> Any:
    """The same groups for `times` stacked copies of the rows: a mask per row is repeated."""
    first = laid_out_channels_first(channels_first, sample_shape)

    def repeated(mask: Any) -> np.ndarray:
        mask = np.asarray(mask)
        return np.tile(mask, (times,) + (1,) * (mask.ndim - 1))

    if isinstance(groups, np.ndarray):
        players = resolve_groups(groups, sample_shape, feature_names, n_rows,
                                 channels_first=first)
        return repeated(groups) if players is not None and players.per_row else groups
    if isinstance(groups, Mapping):
        return {name: repeated(members) if isinstance(members, np.ndarray) and _member_mask(
            name, members, sample_shape, feature_names, n_rows, first).ndim == 2 else members
            for name, members in groups.items()}
    return groups
