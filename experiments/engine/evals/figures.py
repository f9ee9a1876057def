"""The behavioural kinds' figures: rates with their intervals, and paired effects with theirs."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from experiments.engine.evals.stats import PairedEffect

RATE_COLOR, EFFECT_COLOR = "#2563eb", "#dc2626"


def _bars(fig: go.Figure, rates: Sequence[tuple[str, float, float, float]], *, row: int, col: int, name: str) -> None:
    labels = [label for label, *_ in rates]
    values = [value for _, value, _, _ in rates]
    fig.add_trace(
        go.Bar(
            x=labels, y=values, name=name, marker_color=RATE_COLOR, showlegend=False,
            error_y={"type": "data", "symmetric": False, "array": [high - v for (_, v, _, high) in rates],
                     "arrayminus": [v - low for (_, v, low, _) in rates]},
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        ),
        row=row, col=col,
    )  # fmt: skip


def _forest(fig: go.Figure, effects: Sequence[tuple[str, PairedEffect]], *, row: int, col: int) -> None:
    labels = [label for label, _ in effects]
    fig.add_trace(
        go.Scatter(
            x=[e.effect for _, e in effects], y=labels, mode="markers", marker={"color": EFFECT_COLOR, "size": 10},
            showlegend=False,
            error_x={"type": "data", "symmetric": False, "array": [e.ci_high - e.effect for _, e in effects],
                     "arrayminus": [e.effect - e.ci_low for _, e in effects]},
            customdata=[[e.ci_low, e.ci_high, e.p_value, e.n] for _, e in effects],
            hovertemplate="%{y}: %{x:.3f} (CI %{customdata[0]:.3f} to %{customdata[1]:.3f}), "
            "p = %{customdata[2]:.3g}, n = %{customdata[3]}<extra></extra>",
        ),
        row=row, col=col,
    )  # fmt: skip
    fig.add_vline(x=0, line={"color": "#6b7280", "dash": "dot"}, row=row, col=col)


def rates_and_effects(
    rates: Sequence[tuple[str, float, float, float]],
    effects: Sequence[tuple[str, PairedEffect]],
    *,
    title: str,
    rate_title: str,
    effect_title: str,
) -> go.Figure:
    """Left: a rate per group (label, rate, interval low, high) as bars with their intervals; right: paired effects
    with their intervals against the zero line. The headline of every behavioural kind."""
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.2, subplot_titles=(rate_title, effect_title)
    )
    _bars(fig, rates, row=1, col=1, name=rate_title)
    _forest(fig, effects, row=1, col=2)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(autorange="reversed", side="right", row=1, col=2)  # long labels clear of the bars
    fig.update_layout(title=title, height=380 + 18 * max(len(effects), len(rates)))
    return fig
