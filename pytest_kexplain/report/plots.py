"""Pictures of check verdicts, model diagrams and training curves, with matplotlib (Agg).

matplotlib is imported inside the functions, so only a run that asks for a report (or a
``result.plot()`` call) loads it. Colours are the Okabe-Ito palette, safe for the common
colour-vision deficiencies; every axis is labelled.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_kexplain.events import CheckRecord

# Okabe & Ito (2008)
BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILLION = "#D55E00"
GREEN = "#009E73"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
YELLOW = "#F0E442"
GREY = "#999999"
BLACK = "#000000"
HEATMAP = "viridis"  # perceptually uniform, readable in grey and with colour-vision deficiency
DIVERGING = "PuOr_r"  # signed values: orange positive, purple negative, safe for colour-blindness
DPI = 100  # a 6.4-inch picture is 640 pixels wide; 7-point labels are 10 pixels tall
TOKEN_CHARS = 10  # longer token strings are cut in a token heat map's cells
WIDTH = 6.4  # inches
#: the widest picture, inches: at DPI it fits a check's section on the page (1017 pixels),
#: so the browser never scales it (and its labels) down
MAX_WIDTH = 10.0


def _figure(height: float = 3.0, width: float = WIDTH) -> Any:
    """A Figure drawn by the Agg canvas, not registered with pyplot (no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def to_png(figure: Any) -> bytes:
    """Small PNG bytes: the figure drawn by Agg at DPI, reduced to a 256-colour palette, without
    a timestamp or software tag, so the same figure gives the same bytes.

    The palette comes from an octree over the colour space (not a median cut of the pixel
    counts), so a small area keeps its colour: a failed check's vermillion title, the ends of a
    colour bar, every step of a heat map's gradient. The canvas's pixels go to Pillow directly
    (no intermediate PNG to encode and decode)."""
    import numpy as np
    from PIL import Image  # a dependency of matplotlib

    figure.set_dpi(DPI)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())
    palette = Image.fromarray(pixels, "RGBA").convert("RGB").quantize(
        colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small = io.BytesIO()
    palette.save(small, format="PNG", optimize=True)
    return small.getvalue()


def plot_record(record: CheckRecord | Mapping[str, Any], **options: Any) -> Any:
    """The picture of one check record as a matplotlib Figure."""
    data = record.to_dict() if isinstance(record, CheckRecord) else dict(record)
    picture = data.get("picture") or {"kind": "none"}
    drawer = DRAWERS.get(picture.get("kind", "none"), _draw_none)
    figure = drawer(picture, data, **options)
    verdict = data.get("outcome", "")
    figure.suptitle(f"{data.get('check', '')}: {verdict}", fontsize=10,
                    color=VERMILLION if verdict in ("failed", "error") else BLACK)
    return figure


def record_png(record: CheckRecord | Mapping[str, Any]) -> bytes | None:
    """The check's picture as PNG bytes, None when the check has nothing to draw."""
    data = record.to_dict() if isinstance(record, CheckRecord) else dict(record)
    if (data.get("picture") or {}).get("kind", "none") == "none":
        return None
    return to_png(plot_record(data))


def _draw_none(picture: Mapping[str, Any], data: Mapping[str, Any], **_: Any) -> Any:
    figure = _figure(1.2)
    axes = figure.add_subplot()
    axes.axis("off")
    axes.text(0.5, 0.5, "no picture: " + (data.get("message", "").splitlines() or ["-"])[0][:90],
              ha="center", va="center", fontsize=9)
    return figure


def _draw_importance(picture: Mapping[str, Any], data: Mapping[str, Any], into: Any = None,
                     **_: Any) -> Any:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    features = list(picture["features"])
    marked = set(picture.get("marked", []))
    current = [v or 0.0 for v in picture["current"]]
    baseline = picture.get("baseline")
    figure = into if into is not None else _figure(_bars_height(picture))
    axes = figure.add_subplot()
    positions = list(range(len(features)))
    current_label = picture.get("current_label", "current")
    handles = []
    if baseline is not None:
        # against a baseline: colour tells baseline from current; * marks the baseline's top k
        height = 0.4
        axes.barh([p - height / 2 for p in positions], [v or 0.0 for v in baseline], height,
                  color=SKY)
        axes.barh([p + height / 2 for p in positions], current, height, color=BLUE)
        handles += [Patch(color=SKY, label=picture.get("baseline_label", "baseline")),
                    Patch(color=BLUE, label=current_label)]
        mark_meaning = picture.get("marked_label", f"* {picture.get('baseline_label', 'baseline')}"
                                                   " top features")
    else:
        axes.barh(positions, current, 0.7,
                  color=[ORANGE if name in marked else BLUE for name in features])
        handles.append(Patch(color=BLUE, label=current_label))
        if marked & set(features):  # no entry for a colour the chart does not show
            handles.append(Patch(color=ORANGE, label="* named by the check"))
        mark_meaning = None
    axes.set_yticks(positions, [f"{name} *" if name in marked else name for name in features],
                    fontsize=8)
    for tick, name in zip(axes.get_yticklabels(), features):
        if name in marked:
            tick.set_fontweight("bold")
    axes.invert_yaxis()
    limit = picture.get("share_limit")
    if limit is not None and len(marked) == 1:
        axes.axvline(limit, color=VERMILLION, linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color=VERMILLION, linestyle="--", label=f"max_share {limit:g}"))
    titles = []
    if limit is not None and len(marked) != 1:
        titles.append(f"the * {_plural(picture.get('row', 'feature'))} together may carry at "
                      f"most {limit:g}")
    if mark_meaning:
        handles.append(Patch(color="white", label=mark_meaning))
    axes.set_xlabel(picture.get("unit", "share of total importance"))
    axes.set_ylabel(picture.get("row", "feature"))
    hidden = picture.get("hidden_features", 0)
    if hidden:
        row = picture.get("row", "feature")
        marked_hidden = picture.get("hidden_marked", 0)
        titles.append(f"{hidden} less important {row if hidden == 1 else _plural(row)} not shown"
                      + (f", {marked_hidden} of them named by the check" if marked_hidden else ""))
    if titles:
        axes.set_title("\n".join(titles), fontsize=8)
    # at most 4 ticks: labels of small shares (0.0035) overlap on the narrow axis
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
    axes.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                frameon=False)
    return figure


def _bars_height(picture: Mapping[str, Any]) -> float:
    """Inches an importance bar chart needs for its bars."""
    return max(2.4, 0.8 + 0.3 * len(picture["features"]))


def _plural(kind: str) -> str:
    """'features', 'groups', 'features or groups': the plural of a picture's row kind."""
    return " or ".join(f"{word}s" for word in kind.split(" or "))


def _draw_ice(picture: Mapping[str, Any], data: Mapping[str, Any], **_: Any) -> Any:
    figure = _figure(3.0)
    axes = figure.add_subplot()
    grid = picture["grid"]
    counterexamples = picture.get("counterexamples", [])
    violating = {c["row"] for c in counterexamples if c.get("row") is not None}
    for row, curve in zip(picture.get("rows", []), picture.get("curves", [])):
        bad = row in violating
        axes.plot(grid, curve, color=VERMILLION if bad else GREY, linewidth=2 if bad else 0.8,
                  alpha=1 if bad else 0.7, zorder=3 if bad else 1,
                  label=f"row {row} (violates)" if bad else None)
    if picture.get("curves"):
        axes.plot([], [], color=GREY, linewidth=0.8, label="ICE curves of sampled rows")
    for example in counterexamples:
        shrunk = example["source"] != "ICE curve"
        axes.plot([example["low"], example["high"]], [example["output_low"], example["output_high"]],
                  color=PURPLE if shrunk else VERMILLION, marker="*" if shrunk else "o",
                  markersize=11 if shrunk else 7, linestyle=":" if shrunk else "-", zorder=4,
                  label="shrunk counterexample (hypothesis)" if shrunk else "worst ICE violation")
    axes.set_xlabel(picture["feature"])
    output = picture.get("output")
    axes.set_ylabel("model output" if output is None else f"model output ({output})")
    axes.set_title(f"expected {picture['direction']} in {picture['feature']}", fontsize=9)
    # beside the axes: a dozen curves leave no empty corner for it
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure


def _draw_distribution(picture: Mapping[str, Any], data: Mapping[str, Any], **_: Any) -> Any:
    values = [v for v in picture["values"] if v is not None]
    figure = _figure(2.6)
    axes = figure.add_subplot()
    threshold = picture.get("threshold")
    if values:
        low, high = min(values), max(values)
        if threshold is not None:
            low, high = min(low, threshold), max(high, threshold)
        span = (high - low) or 1.0
        bins = [low - 0.02 * span + i * 1.04 * span / 24 for i in range(25)]
        axes.hist(values, bins=bins, color=BLUE, edgecolor="white", label="per row")
    if threshold is not None:
        # dashed, over the mean's solid line: both show where the mean meets the threshold
        axes.axvline(threshold, color=VERMILLION, linestyle="--", linewidth=1.5, zorder=4,
                     label=f"threshold {threshold:g} ({picture.get('good')} passes)")
    mean = picture.get("mean")
    if mean is not None:
        axes.axvline(mean, color=GREEN, linewidth=1.5, zorder=3, label=f"mean {mean:.3g}")
    stages = picture.get("stages") or []
    if len(stages) > 1:
        for stage in stages:
            if stage.get("similarity") is not None:
                axes.axvline(stage["similarity"], color=PURPLE, linewidth=0.8, alpha=0.6)
        axes.plot([], [], color=PURPLE, linewidth=0.8, label="stage means")
    axes.set_xlabel(picture.get("label", "value"))
    axes.set_ylabel("rows")
    shown = len(values)
    if picture.get("count", shown) > shown:
        axes.set_title(f"{shown} of {picture['count']} values (evenly spaced quantiles)", fontsize=8)
    axes.legend(fontsize=7, loc="best")
    return figure


def _draw_token_heatmap(picture: Mapping[str, Any], data: Mapping[str, Any], **_: Any) -> Any:
    """One row of cells per sample (and the baseline's row below it), coloured by signed
    attribution on one symmetric scale, each cell labelled with its token."""
    from matplotlib.colors import TwoSlopeNorm

    maps, labels = picture["maps"], picture["labels"]
    baseline = picture.get("baseline_maps")
    current_label = picture.get("current_label", "current")
    rows: list[tuple[str, list[Any], list[str]]] = []
    for r, sample in enumerate(picture["samples"]):
        name = f"sample {sample}"
        rows.append((f"{name}\n{current_label}" if baseline else name, maps[r], labels[r]))
        if baseline:
            rows.append((f"{name}\n{picture.get('baseline_label', 'baseline')}", baseline[r],
                         labels[r]))
    width = max([len(row) for _, row, _ in rows] or [1])
    matrix = [[float("nan")] * width for _ in rows]
    for i, (_, values, _) in enumerate(rows):
        for j, value in enumerate(values):
            matrix[i][j] = 0.0 if value is None else value
    scale = max([abs(v) for row in matrix for v in row if v == v] or [1.0]) or 1.0
    vocabulary = picture.get("tokens") == "vocabulary"
    figure = _figure(1.1 + 0.5 * len(rows), width=max(WIDTH, min(MAX_WIDTH, 1.6 + 0.55 * width)))
    axes = figure.add_subplot()
    shown = axes.imshow(matrix, cmap=DIVERGING, norm=TwoSlopeNorm(0.0, -scale, scale),
                        aspect="auto", interpolation="nearest")
    def shorten(token: str) -> str:
        return token if len(token) <= TOKEN_CHARS else token[:TOKEN_CHARS - 1] + "…"

    longest = max([len(shorten(t)) for _, _, row in rows for t in row] or [1])
    cell_points = 0.7 * 72 * figure.get_figwidth() / width  # the axes take ~70% of the width
    size = max(4.5, min(8.0, cell_points / (0.62 * max(longest, 2))))
    for i, (_, _, tokens) in enumerate(rows):
        for j, token in enumerate(tokens):
            value = matrix[i][j]
            strong = value == value and abs(value) > 0.6 * scale
            axes.text(j, i, shorten(token), ha="center", va="center", fontsize=size,
                      color="white" if strong else BLACK)
    axes.set_yticks(range(len(rows)), [name for name, _, _ in rows], fontsize=7)
    if vocabulary:
        axes.set_xticks([])
        axes.set_xlabel("tokens of the sample, strongest first", fontsize=8)
    else:
        start = ((picture.get("cells") or [[0]])[0] or [0])[0]
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(x) + start}"))
        axes.tick_params(axis="x", labelsize=7)
        axes.set_xlabel("position (cells labelled with the token id)", fontsize=8)
    axes.set_ylabel("sample", fontsize=8)
    hidden = max(picture.get("hidden_cells") or [0])
    if hidden:
        axes.set_title(f"up to {hidden} more token(s) per sample not shown", fontsize=8)
    figure.colorbar(shown, ax=axes, shrink=0.9, label="attribution")
    return figure


def _draw_heatmap(picture: Mapping[str, Any], data: Mapping[str, Any], **options: Any) -> Any:
    if picture.get("layout") == "tokens":
        return _draw_token_heatmap(picture, data, **options)
    # image groups of several inputs: one block of maps per input, one above the other
    blocks = [picture, *(picture.get("more_maps") or [])]
    columns = 3 if any(block.get("baseline_maps") for block in blocks) else 2
    heights = [1.0 + 1.7 * len(block["maps"]) for block in blocks]
    bars = picture.get("bars")
    if bars or len(blocks) > 1 or picture.get("caption"):
        # the maps of each input (under its caption, below the check's title) above the
        # importance bars of the groups
        heights += [_bars_height(bars)] if bars else []
        width = WIDTH if bars else min(WIDTH, 1.0 + 2.0 * columns)
        figure = _figure(sum(heights), width=width)
        canvases = list(figure.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)
                        .ravel())
        if bars:
            _draw_importance(bars, data, into=canvases.pop())
    else:
        figure = _figure(heights[0], width=min(WIDTH, 1.0 + 2.0 * columns))
        canvases = [figure]
    # the maps of every block share one scale: each holds shares of the same importance
    largest = max([abs(v) for block in blocks
                   for m in block["maps"] + (block.get("baseline_maps") or [])
                   for row in m for v in row if v is not None] or [0.0])
    unit = picture.get("unit", "|attribution|")
    if not largest:  # a dark map reads as "low"; say it is nothing at all
        unit += " (every value is 0)"
    for canvas, block in zip(canvases, blocks):
        _draw_maps(canvas, block, picture, columns, largest or 1.0, unit)
    return figure


def _draw_maps(canvas: Any, block: Mapping[str, Any], picture: Mapping[str, Any], columns: int,
               scale: float, unit: str) -> None:
    """One input's maps: a row per sample, the input beside its current (and baseline) map."""
    maps, inputs = block["maps"], block["inputs"]
    baseline = block.get("baseline_maps")
    rows = len(maps)
    image = picture.get("layout") == "image"
    grouped = "groups" in block  # image patches or regions: each filled with its share
    grid = canvas.subplots(rows, columns, squeeze=False)
    what = "share of importance" if grouped else "attribution"
    # three panels a row leave each title a third of the width: the label goes on a line of
    # its own ("share of importance (candidate)" ran into its neighbour)
    gap = "\n" if columns == 3 else " "
    titles = ["input", f"{what}{gap}({picture.get('current_label', 'current')})",
              f"{what}{gap}({picture.get('baseline_label', 'baseline')})"]
    source = f"input {block['input']!r}" if block.get("input") else "input"
    titles[0] = f"{source} ({block.get('n_groups', '')} {block['groups']})" if grouped else source
    if block.get("caption"):  # which input of a model with several the maps show
        canvas.suptitle(block["caption"], fontsize=7, wrap=True)
    last = None
    for r in range(rows):
        panels = [(inputs[r], "gray", None), (maps[r], HEATMAP, scale)]
        if baseline and r < len(baseline):
            panels.append((baseline[r], HEATMAP, scale))
        for c, (matrix, cmap, vmax) in enumerate(panels):
            axes = grid[r][c]
            clean = [[0.0 if v is None else v for v in row] for row in matrix]
            if grouped and vmax:  # the map laid over the image it explains
                axes.imshow([[0.0 if v is None else v for v in row] for row in inputs[r]],
                            cmap="gray", aspect="equal", interpolation="nearest")
            shown = axes.imshow(clean, cmap=cmap, vmin=0 if vmax else None, vmax=vmax,
                                aspect="equal" if image else "auto", interpolation="nearest",
                                alpha=0.85 if grouped and vmax else None)
            if vmax:
                last = shown
            if r == 0:
                axes.set_title(titles[c], fontsize=8)
            if image:
                axes.set_xticks([])
                axes.set_yticks([])
                sample = block["samples"][r]
                label = sample if isinstance(sample, str) else f"sample {sample}"
                axes.set_ylabel(label if c == 0 else "", fontsize=8)
            else:
                from matplotlib.ticker import MaxNLocator

                axes.xaxis.set_major_locator(MaxNLocator(integer=True))
                axes.yaxis.set_major_locator(MaxNLocator(integer=True))
                axes.set_xlabel("time step", fontsize=7)
                axes.set_ylabel(f"sample {block['samples'][r]}\nfeature" if c == 0
                                else "feature", fontsize=7)
                axes.tick_params(labelsize=6)
    for r in range(rows):
        for c in range(columns):
            if c >= 2 and not (baseline and r < len(baseline)):
                grid[r][c].axis("off")
    if last is not None:
        canvas.colorbar(last, ax=grid[:, 1:].ravel().tolist(), shrink=0.8, label=unit)


def _draw_deletion(picture: Mapping[str, Any], data: Mapping[str, Any], **_: Any) -> Any:
    figure = _figure(2.6)
    axes = figure.add_subplot()
    axes.plot(picture["deleted"], [v or 0.0 for v in picture["change"]], color=BLUE, marker="o",
              markersize=3, label="most important deleted first")
    row = picture.get("row", "feature")
    rows = _plural(row)
    if picture.get("random_change") is not None:
        # a point at k, where it was measured: a line there hid under the required line
        axes.plot([picture["k"]], [picture["random_change"]], color=BLACK, marker="D",
                  markersize=5, linestyle="none", zorder=4,
                  label=f"{picture['k']} random {row if picture['k'] == 1 else rows} deleted")
    if picture.get("required") is not None:
        axes.axhline(picture["required"], color=VERMILLION, linestyle="--",
                     label="required at k (random x (1 + margin))")
    axes.axvline(picture["k"], color=GREEN, linewidth=0.8, label=f"k = {picture['k']}")
    axes.set_xlabel(f"{rows} deleted (set to the reference)")
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # a count of deleted players
    axes.set_ylabel("mean |output change|")
    axes.legend(fontsize=7, loc="best")
    return figure


DRAWERS = {
    "none": _draw_none,
    "importance": _draw_importance,
    "ice": _draw_ice,
    "distribution": _draw_distribution,
    "heatmap": _draw_heatmap,
    "deletion": _draw_deletion,
}


def history_png(history: Mapping[str, Any]) -> bytes:
    """Training and validation curves: one panel per metric, val_ curves beside their metric."""
    curves: Mapping[str, Sequence[float | None]] = history["curves"]
    metrics = [name for name in curves if not name.startswith("val_")]
    metrics += [name[4:] for name in curves if name.startswith("val_") and name[4:] not in metrics]
    metrics = [m for m in metrics if m != "learning_rate"][:4] or list(curves)[:1]
    figure = _figure(2.4, width=min(WIDTH, 0.6 + 2.6 * len(metrics)))
    panels = figure.subplots(1, len(metrics), squeeze=False)[0]
    for axes, metric in zip(panels, metrics):
        for name, colour, label in ((metric, BLUE, "training"), (f"val_{metric}", ORANGE,
                                                                 "validation")):
            values = curves.get(name)
            if values:
                epochs = list(range(1, len(values) + 1))
                axes.plot(epochs, [float("nan") if v is None else v for v in values],
                          color=colour, marker="o", markersize=2, label=label)
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.legend(fontsize=7)
    return to_png(figure)


#: the most layer boxes side by side in the built-in layer graph (more wrap onto further rows)
GRAPH_SLOTS = 5
#: the smallest label of the built-in layer graph, points (7 pixels tall at DPI)
GRAPH_POINTS = 5.0


def _cut(line: str, chars: int) -> str:
    """The line, or its first chars - 1 characters and an ellipsis when longer."""
    return line if len(line) <= chars else line[:chars - 1] + "\u2026"


def layer_graph_png(card: Mapping[str, Any]) -> bytes:
    """The built-in drawing of a model's layer graph as PNG bytes."""
    return to_png(layer_graph_figure(card))


def layer_graph_figure(card: Mapping[str, Any]) -> Any:
    """The built-in drawing of a model's layer graph: one box per layer with its class, output
    shape and parameter count, arrows from inbound layers (behind the boxes), layers in depth
    order, the layers of one depth side by side in boxes that never overlap, their text sized
    to fit."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    layers = card["layers"]
    depth: dict[str, int] = {}
    for layer in layers:
        depth[layer["name"]] = 1 + max([depth.get(p, -1) for p in layer["inbound"]] or [-1])
    by_depth: dict[int, list[str]] = {}
    for layer in layers:
        by_depth.setdefault(depth[layer["name"]], []).append(layer["name"])
    # many side-by-side layers (ten parallel branches) wrap onto rows of at most GRAPH_SLOTS
    # boxes: a row of ten shrank every label below its box
    levels: dict[int, list[str]] = {}
    for names in by_depth.values():
        rows = -(-len(names) // GRAPH_SLOTS)
        per_row = -(-len(names) // rows)  # rows as even as they go: 10 -> 5 + 5, 7 -> 4 + 3
        for start in range(0, len(names), per_row):
            levels[len(levels)] = names[start:start + per_row]
    slots = max(len(names) for names in levels.values())
    inches = min(MAX_WIDTH, 0.4 + 2.6 * slots)
    figure = _figure(0.2 + 0.75 * len(levels), width=inches)
    figure.set_layout_engine("none")  # one axes over the whole figure: boxes in known inches
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, slots)
    axes.set_ylim(len(levels), 0)
    axes.axis("off")
    where = {}
    for level, names in levels.items():
        for i, name in enumerate(names):
            where[name] = ((i + 0.5) * slots / len(names), level + 0.5)
    lines = [(f"{layer['name']} ({layer['class']})",
              f"{layer['output_shape']}  ·  {layer['parameters']:,} params") for layer in layers]
    # one size for every box: the longest line fills at most the box's width (0.9 of a slot)
    box_points = 0.86 * 72 * inches / slots
    longest = max(max(len(top), len(bottom)) for top, bottom in lines)
    size = max(GRAPH_POINTS, min(7.5, box_points / (0.62 * longest)))
    # a line too long for its box even at the smallest size is cut, with an ellipsis
    fits = max(4, int(box_points / (0.62 * size)))
    lines = [(_cut(top, fits), _cut(bottom, fits)) for top, bottom in lines]
    for layer, (top, bottom) in zip(layers, lines):
        x, y = where[layer["name"]]
        for parent in layer["inbound"]:
            if parent in where:
                px, py = where[parent]
                axes.add_patch(FancyArrowPatch((px, py + 0.3), (x, y - 0.3), arrowstyle="-|>",
                                               mutation_scale=8, color=GREY, zorder=1))
        axes.add_patch(FancyBboxPatch((x - 0.45, y - 0.3), 0.9, 0.6, boxstyle="round,pad=0.02",
                                      facecolor="#E8F1F8", edgecolor=BLUE, zorder=2))
        axes.text(x, y - 0.1, top, ha="center", va="center", fontsize=size, fontweight="bold",
                  zorder=3)
        axes.text(x, y + 0.14, bottom, ha="center", va="center", fontsize=max(GRAPH_POINTS, size * 0.93),
                  zorder=3)
    return figure
