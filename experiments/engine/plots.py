"""Plotly figures the kinds save as artifacts; the run page draws them with the bundled plotly.js."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor


def head_heatmaps(
    panels: dict[str, Tensor], *, title: str, zmax: float | None = 1.0, signed: Sequence[str] = ()
) -> go.Figure:
    """One layer x head heatmap per panel (e.g. induction, previous-token, duplicate-token scores).

    Panels named in `signed` hold scores in [-1, 1] (e.g. OV eigenvalue positivity): they get their own diverging
    colour scale centred on 0, so a negative head does not read as an idle one."""
    titles = [name.replace("_", " ") for name in panels]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.08)
    for col, (name, scores) in enumerate(panels.items(), start=1):
        is_signed = name in signed
        fig.add_trace(
            go.Heatmap(
                z=scores.tolist(),
                x=[f"H{h}" for h in range(scores.shape[1])],
                y=[f"L{layer}" for layer in range(scores.shape[0])],
                zmin=-1 if is_signed else 0,
                zmax=1 if is_signed else zmax,
                coloraxis="coloraxis2" if is_signed else "coloraxis",
                hovertemplate=f"{name}<br>%{{y}}%{{x}}: %{{z:.3f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_layout(title=title, coloraxis={"colorscale": "Viridis"}, height=320 + 20 * len(scores))
    if any(name in signed for name in panels):
        fig.update_layout(
            coloraxis={"colorbar": {"x": 1.02, "len": 0.45, "y": 0.78}, "cmin": 0, "cmax": zmax},
            coloraxis2={"colorscale": "RdBu", "cmin": -1, "cmax": 1,
                        "colorbar": {"x": 1.02, "len": 0.45, "y": 0.22, "title": {"text": "OV"}}},
        )  # fmt: skip
    fig.update_annotations(font_size=11)  # panel titles stay apart with five panels side by side
    fig.update_yaxes(autorange="reversed")
    return fig


def ranked_bars(
    labels: Sequence[str], values: Sequence[float], colors: Sequence[str], *, title: str, x: str
) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(values), y=list(labels), orientation="h", marker_color=list(colors)))
    fig.update_layout(title=title, xaxis_title=x, height=120 + 22 * len(labels), yaxis={"autorange": "reversed"})
    return fig


def trajectory(
    xs: Sequence[float], ys: Sequence[float], steps: Sequence[int], change_points: Sequence[int], *, title: str
) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=list(xs), y=list(ys), mode="lines+markers", text=[f"step {s}" for s in steps],
            marker={"color": list(range(len(steps))), "colorscale": "Viridis", "size": 8},
            hovertemplate="%{text}<br>PC1 %{x:.3f}<br>PC2 %{y:.3f}<extra></extra>", name="checkpoints",
        )
    )  # fmt: skip
    marked = [i for i, s in enumerate(steps) if s in set(change_points)]
    fig.add_trace(
        go.Scatter(
            x=[xs[i] for i in marked], y=[ys[i] for i in marked], mode="markers+text",
            text=[f"change point @ {steps[i]}" for i in marked], textposition="top center",
            marker={"symbol": "x", "size": 14, "color": "crimson"}, name="change points",
        )
    )  # fmt: skip
    fig.update_layout(title=title, xaxis_title="PC1", yaxis_title="PC2", height=480)
    return fig


def histogram(values: Sequence[float], *, title: str, x: str, bins: int = 60) -> go.Figure:
    fig = go.Figure(go.Histogram(x=list(values), nbinsx=bins, marker_color="steelblue"))
    fig.update_layout(title=title, xaxis_title=x, yaxis_title="tokens", yaxis_type="log", height=400, bargap=0.02)
    return fig


def class_lines(
    xs: Sequence[float | str],
    lines: dict[str, Sequence[float]],
    *,
    title: str,
    x: str,
    y: str,
    marked: tuple[float | str, float | str] | None = None,
    marked_label: str = "",
    log_x: bool = False,
) -> go.Figure:
    """One line per class (or layer) over steps or models; `marked` draws the edges of the stretch between two x
    values."""
    fig = go.Figure(
        [go.Scatter(x=list(xs), y=list(values), mode="lines+markers", name=name) for name, values in lines.items()]
    )
    if marked is not None:
        # Two dashed edges drawn as a trace: data coordinates, so they sit right on a log axis too.
        values = [v for line in lines.values() for v in line]
        low, high = min(values), max(values)
        fig.add_trace(
            go.Scatter(
                x=[marked[0], marked[0], None, marked[1], marked[1]], y=[low, high, None, low, high], mode="lines",
                line={"color": "crimson", "dash": "dash"}, name=marked_label,
            )
        )  # fmt: skip
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=440)
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def guess_heatmaps(examples: Sequence[dict], *, title: str) -> go.Figure:
    """Per example: position x rank, coloured by the decoder's probability, each cell naming its guess (a ✓ where it
    is the true token). `examples` hold "truth" (a label per position), "guesses" and "probabilities"
    (position x rank)."""
    titles = [e["title"] for e in examples]
    fig = make_subplots(rows=len(examples), cols=1, subplot_titles=titles, vertical_spacing=0.08)
    for row, example in enumerate(examples, start=1):
        truth, guesses = example["truth"], example["guesses"]
        ranks = range(len(guesses[0]))
        positions = range(len(truth))
        text = [[f"{guesses[p][r]}{' ✓' if guesses[p][r] == truth[p] else ''}" for p in positions] for r in ranks]
        fig.add_trace(
            go.Heatmap(
                z=[[example["probabilities"][p][r] for p in range(len(truth))] for r in ranks],
                x=[f"{example['positions'][p]}: {truth[p]}" for p in range(len(truth))],
                y=[f"#{r + 1}" for r in ranks], text=text, texttemplate="%{text}", textfont={"size": 9},
                zmin=0, zmax=1, coloraxis="coloraxis",
                hovertemplate="position: true token %{x}<br>guess %{y}: %{text} (p = %{z:.3f})<extra></extra>",
            ),
            row=row, col=1,
        )  # fmt: skip
    fig.update_layout(
        title=title, coloraxis={"colorscale": "Blues", "colorbar": {"title": "p"}}, height=120 + 340 * len(examples)
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-60, tickfont={"size": 9})
    return fig


def signed_head_heatmaps(panels: dict[str, Tensor], *, title: str, value: str) -> go.Figure:
    """Layer x head heatmaps of signed values on one colour scale, centred on 0 (blue below, red above), side by
    side: e.g. estimated and exact patching effects."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.08)
    bound = max(float(scores.abs().max()) for scores in panels.values()) or 1.0
    for col, (name, scores) in enumerate(panels.items(), start=1):
        fig.add_trace(
            go.Heatmap(
                z=scores.tolist(),
                x=[f"H{h}" for h in range(scores.shape[1])],
                y=[f"L{layer}" for layer in range(scores.shape[0])],
                text=[[f"{v:.2f}" for v in row] for row in scores.tolist()] if scores.numel() <= 400 else None,
                texttemplate="%{text}" if scores.numel() <= 400 else None,
                coloraxis="coloraxis",
                hovertemplate=f"{name}<br>%{{y}}%{{x}}: %{{z:.3f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_layout(
        title=title,
        coloraxis={"colorscale": "RdBu", "reversescale": True, "cmid": 0, "cmin": -bound, "cmax": bound,
                   "colorbar": {"title": value}},
        height=320 + 20 * len(scores),
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    return fig
