/*
 * The compare page's step series: one plotly chart per series name, one line per run.
 *
 * The page embeds [{name, lines: [{run, label, points: [[step, value], ...]}]}] with
 * json_script (id in the charts' data-compare-series) and renders a <figure class="chart">
 * per name, in the same order. Colours and axes follow runs.js's charts; the n-th run's
 * line takes --series-n from the stylesheet, the colour of its swatch in the runs table.
 */
(function () {
  "use strict";

  const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const FALLBACK_COLORS = ["#4338ca", "#d97706", "#059669", "#db2777", "#0891b2", "#7c3aed"];

  function theme() {
    const style = window.getComputedStyle(document.documentElement);
    const value = function (name, fallback) { return style.getPropertyValue(name).trim() || fallback; };
    return {
      text: value("--text", "#1b2130"),
      muted: value("--muted", "#5d6678"),
      grid: value("--border", "#e2e5eb"),
      font: value("--font", "system-ui, sans-serif"),
      series: FALLBACK_COLORS.map(function (color, index) { return value("--series-" + index, color); }),
    };
  }

  function layoutFor(colors, name) {
    const axis = { gridcolor: colors.grid, zerolinecolor: colors.grid, linecolor: colors.grid, color: colors.muted };
    return {
      margin: { l: 56, r: 16, t: 12, b: 44 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: colors.font, size: 12, color: colors.text },
      xaxis: Object.assign({ title: { text: "step" } }, axis),
      yaxis: Object.assign({ title: { text: name } }, axis),
      showlegend: true,
      legend: { orientation: "h", y: -0.25 },
      hovermode: "x",
    };
  }

  function draw(container, series, runOrder) {
    const colors = theme();
    const figures = container.querySelectorAll(".chart[data-series-index]");
    figures.forEach(function (figure) {
      const entry = series[Number(figure.dataset.seriesIndex)];
      if (!entry) return;
      const traces = entry.lines.map(function (line) {
        const color = colors.series[runOrder.indexOf(line.run) % colors.series.length];
        const points = line.points || [];
        return {
          x: points.map(function (point) { return point[0]; }),
          y: points.map(function (point) { return point[1]; }),
          name: line.label,
          type: "scatter",
          mode: points.length > 60 ? "lines" : "lines+markers",
          line: { color: color, width: 2 },
          marker: { color: color, size: 5 },
          hovertemplate: line.label + ": %{y}<extra></extra>",
        };
      });
      window.Plotly.newPlot(figure.querySelector(".chart-plot"), traces, layoutFor(colors, entry.name), PLOT_CONFIG);
    });
  }

  function start() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-compare-series]").forEach(function (container) {
      const script = document.getElementById(container.dataset.compareSeries);
      if (!script) return;
      try {
        const series = JSON.parse(script.textContent);
        // Every run keeps one colour across the charts, even where it lacks a series.
        const runOrder = [];
        series.forEach(function (entry) {
          entry.lines.forEach(function (line) { if (runOrder.indexOf(line.run) < 0) runOrder.push(line.run); });
        });
        const columns = Array.from(document.querySelectorAll("[data-compare-run]")).map(function (cell) {
          return Number(cell.dataset.compareRun);
        });
        draw(container, series, columns.length ? columns : runOrder);
      } catch (error) {
        container.textContent = "Could not draw the charts: " + error.message;
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
