"""Class labels: name the units of an output so that ``target="setosa"`` works.

Labels come from ``class_names=[...]``, or from the model: a scikit-learn classifier's
``classes_``, or a ``class_names`` attribute set on a Keras model. A model with several
outputs takes them per output, ``{output name: [...]}``, of which the explained output's
apply. Integers given as a target are always unit indices; labels are matched as strings.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pytest_kexplain.errors import InvalidArgument, InvalidArgumentType


def check_class_names(class_names: Any) -> tuple[str, ...] | None:
    """Validate explain()'s class_names= (a list of distinct labels) before any model call."""
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, (Sequence, np.ndarray)):
        raise InvalidArgument(
            f"class_names must be a list of labels, one per output unit (for a model with "
            f"several outputs, {{output name: [labels]}}), got {type(class_names).__name__} "
            f"{class_names!r}."
        )
    names = tuple(_label(name, position) for position, name in enumerate(class_names))
    if not names:
        raise InvalidArgument("class_names is empty; give one label per output unit.")
    for name in dict.fromkeys(names):
        positions = [position for position, other in enumerate(names) if other == name]
        if len(positions) > 1:
            as_strings = ("" if len({type(class_names[p]) for p in positions}) == 1
                          else ", as labels are compared as strings")
            raise InvalidArgument(
                f"class_names must be distinct, one label per output unit, but {name!r} is at "
                f"positions {', '.join(map(str, positions[:-1]))} and {positions[-1]}"
                f"{as_strings}.")
    return names


def _label(value: Any, position: int) -> str:
    """One entry of class_names as a label: a string or a number (NumPy's too), never None."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        raise InvalidArgument(
            f"class_names[{position}] is {value!r}, not a label: give every output unit its "
            "label (a string or a number), in the order of the units.")
    if not isinstance(value, (str, int, float, np.integer, np.floating, np.bool_)):
        raise InvalidArgumentType(
            f"class_names[{position}] is a {type(value).__name__}, {value!r}: a label must be "
            "a string or a number.")
    return str(value)


def labels_per_output(class_names: Any) -> dict[str, tuple[str, ...]] | None:
    """Validate class_names given per output, ``{output name: labels}``; None for a list."""
    if not isinstance(class_names, Mapping):
        return None
    if not class_names:
        raise InvalidArgument("class_names is an empty mapping; give {output name: [labels]}.")
    per_output: dict[str, tuple[str, ...]] = {}
    for name, labels in class_names.items():
        if not isinstance(name, str):
            raise InvalidArgument(
                f"class_names given as a mapping must map output names (str) to labels, got "
                f"the key {name!r}; a model with one output takes a list of labels."
            )
        try:
            checked = check_class_names(labels)
        except InvalidArgument as error:
            raise InvalidArgument(f"class_names[{name!r}]: {error}") from None
        if checked is None:
            raise InvalidArgument(f"class_names[{name!r}] is None; give the output's labels.")
        per_output[name] = checked
    return per_output


def select_class_names(class_names: Any, output: Any) -> tuple[str, ...] | None:
    """The labels of the explained output: class_names as given, or its entry for `output`.

    Labels given per output need the output named (``output="size"``); an output without an
    entry has no labels.
    """
    per_output = labels_per_output(class_names)
    if per_output is None:
        return check_class_names(class_names)
    if not isinstance(output, str):
        choice = "" if output is None else f" (output={output!r} is an index)"
        raise InvalidArgument(
            f"class_names is given per output ({', '.join(map(repr, per_output))}), so the "
            f"explained output must be named{choice}: pass output={next(iter(per_output))!r} "
            f"or another output's name. A model with a single output takes its labels as a "
            f"list, class_names=[...]."
        )
    return per_output.get(output)


def check_output_keys(class_names: Any, outputs: Sequence[str] | None, description: str) -> None:
    """Every output named in class_names={output: labels} must be one of the model's."""
    per_output = labels_per_output(class_names)
    if per_output is None or outputs is None:
        return
    unknown = [name for name in per_output if name not in outputs]
    if unknown:
        raise InvalidArgument(
            f"class_names names {', '.join(map(repr, unknown))}, which "
            f"{'is not an output' if len(unknown) == 1 else 'are not outputs'} of {description}; "
            f"its outputs are {', '.join(map(repr, outputs))}."
        )


def check_label_count(class_names: tuple[str, ...] | None, n_outputs: int, source: str) -> None:
    """The labels must name every unit of the explained output."""
    if class_names is not None and len(class_names) != n_outputs:
        given = len(class_names)
        raise InvalidArgument(
            f"{source} has {given} label{'s' if given != 1 else ''} ({', '.join(class_names[:6])}"
            f"{', ...' if given > 6 else ''}) but the explained output has {n_outputs} "
            f"unit{'s' if n_outputs != 1 else ''}; give {_wanted(n_outputs)}."
        )


def _wanted(n_outputs: int) -> str:
    if n_outputs == 1:  # its own class, or the two classes it separates (adapters/binary.py)
        return "1 label, or 2 for the two classes a one-unit output separates"
    return f"{n_outputs} labels, one per unit"


def label_index(label: str, class_names: tuple[str, ...] | None, n_outputs: int) -> int:
    """The unit index of a class label; unknown labels list the known ones."""
    label = str(label)  # NumPy's str (clf.classes_[0]) is quoted as the label it is
    if class_names is None:
        raise InvalidArgument(
            f"target={label!r} is a class label, but the model's {n_outputs} output "
            f"{'unit has' if n_outputs == 1 else 'units have'} "
            f"no labels; pass class_names=[...] (one per unit) to name them, or give target as "
            f"an index in 0..{n_outputs - 1} or 'predicted'."
        )
    if label in class_names:
        return class_names.index(label)
    close = difflib.get_close_matches(label, list(class_names), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    if n_outputs == 1 and len(class_names) == 1:
        raise InvalidArgument(
            f"target={label!r} is not the class of this one-unit output: it scores "
            f"{class_names[0]!r} (a sigmoid's probability, a binary decision function's score; "
            f"with two class_names, the second), and the other class's attributions are the "
            f"negatives of these. Explain "
            f"target={class_names[0]!r} (or leave target unset); a Keras model's one unit "
            f"given both labels, class_names=[{label!r}, {class_names[0]!r}], explains either "
            f"class and each row's own with target='predicted'."
        )
    raise InvalidArgument(
        f"target={label!r} is not a class label.{hint} The labels are: "
        f"{', '.join(map(repr, class_names))} (or 'predicted' for each row's argmax)."
    )


def labels_to_indices(labels: np.ndarray, class_names: tuple[str, ...] | None,
                      n_outputs: int) -> np.ndarray:
    """Per-row unit indices for per-row labels."""
    mapping = {label: label_index(str(label), class_names, n_outputs)
               for label in dict.fromkeys(labels.tolist())}
    return np.array([mapping[label] for label in labels.tolist()], dtype=np.int64)


def unit_name(index: int, class_names: tuple[str, ...] | None) -> str:
    """How an output unit is named in explanations and failure messages."""
    return class_names[index] if class_names is not None else f"output[{index}]"


def readable_output(name: str) -> str:
    """How a message names an explained output: a bare number is a class label (a scikit-learn
    classifier's classes_ 0/1), which reads 'class 1' rather than '1'; target="predicted"
    reads 'the predicted class' ('explanation of predicted drifted' named no output); other
    names are kept."""
    if name == "predicted":
        return "the predicted class"
    return f"class {name}" if name.lstrip("-").replace(".", "", 1).isdigit() else name


def output_label(head: str | None, unit: str, n_units: int) -> str:
    """'output', 'setosa', or for a model with several outputs 'price' / 'kind[setosa]'."""
    if head is None:
        return unit
    if n_units == 1:
        return head
    if unit.startswith("output[") and unit.endswith("]"):  # an unlabelled unit: kind[2]
        unit = unit[len("output["):-1]
    return f"{head}[{unit}]"
