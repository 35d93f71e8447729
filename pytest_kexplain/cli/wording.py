"""explain()'s error messages in the command's words: its keywords become the flags that set
them (`output='kind'` -> `--output kind`) and `X` becomes the data file's name."""

from __future__ import annotations

import re

#: explain()'s keywords and the flags that set them, for errors worded for the command line
FLAGS = {"output": "--output", "target": "--target", "class_names": "--class-names",
         "groups": "--groups", "vocabulary": "--vocabulary", "pad_id": "--pad-id",
         "method": "--method", "background": "--background", "batch_size": "--batch-size",
         "seed": "--seed"}
_KEYWORD = re.compile(r"\b(" + "|".join(FLAGS) + r")=(\[\.\.\.\]|'[^']*'|\"[^\"]*\"|[^\s,;)]*)")
_DATA = re.compile(r"(?<![\w.(\[=])X(?=[\s.,;:)]|'s\b|$)")


def flag_wording(message: str, data_name: str) -> str:
    """An explain() error in the command's words: `output='kind'` -> `--output kind`, X -> DATA."""

    def flag(match: re.Match[str]) -> str:
        value = match.group(2)
        end = ""
        if value.endswith(".") and not value.startswith(("'", '"')):
            value, end = value[:-1], "."
        if value == "[...]":
            value = "A,B,..."
        elif value[:1] in ("'", '"'):
            value = value[1:-1]
        return f"{FLAGS[match.group(1)]} {value}".rstrip() + end

    # an explainer option is set with --option KEY=VALUE: layer='<name>' -> --option layer=<name>
    message = re.sub(r"\b(layer|input)='([^']*)'", r"--option \1=\2", message)
    message = message.replace("pass input= one", "pass --option input= one")
    # a vocabulary per input is one --vocabulary INPUT=FILE each, not a dict
    message = re.sub(r" as a dict, vocabulary=\{([^{}]*)\}", lambda m: ", " + " ".join(
        f"--vocabulary {name}=FILE" for name in re.findall(r"'([^']*)':", m.group(1))), message)
    message = message.replace("vocabulary={input name: vocabulary}", "--vocabulary INPUT=FILE")
    # an input's label mask is a .npy file named in the --groups mapping
    message = re.sub(r"groups=\{'([^']*)': labels\}", r"""--groups '{"\1": "LABELS.npy"}'""",
                     message)
    # an input's grid is a "grid:RxC" string in the --groups mapping
    message = re.sub(r"groups=\{'([^']*)': Grid\((\d+), (\d+)\)\}",
                     r"""--groups '{"\1": "grid:\2x\3"}'""", message)
    message = re.sub(r"groups=Grid\(\.\.\.\)", "a grid", message)
    message = re.sub(r"Grid\((?:rows=)?(\d+), (?:cols=)?(\d+)\)", r"grid:\1x\2", message)
    message = _KEYWORD.sub(flag, message)
    message = re.sub(r" \(X\.shape = \([^()]*\)\)", "", message)  # the file's shape is named
    message = re.sub(r"\b(class_names|pad_id|batch_size)\b", lambda m: FLAGS[m.group(1)], message)
    return _DATA.sub(data_name, message)
