/*
 * The compare page's step series: one plotly chart per series name, one line per run.
 *
 * The page embeds [{name, lines: [{run, label, points: [[step, value], ...]}]}] with
 * json_script (id in the charts' data-compare-series) and renders a <figure class="chart">
 * per name, in the same order. Colours and axes come from charts.js, as on a run's page; the
 * n-th run's line takes --series-n from the stylesheet, the colour of its swatch in the runs table.
 */
(function () {
  "use strict";

  const charts = window.siteCharts; // colours, axes and plotly options shared with runs.js

  function draw(container, series, runOrder) {
    const colors = charts.theme();
    const figures = container.querySelectorAll(".chart[data-series-index]");
    figures.forEach(function (figure) {
      const entry = series[Number(figure.dataset.seriesIndex)];
      if (!entry) return;
      const traces = entry.lines.map(function (line) {
        const color = colors.series[runOrder.indexOf(line.run) % colors.series.length];
        return charts.stepTrace(line.points || [], line.label, color);
      });
      const logSteps = entry.lines.every(function (line) { return charts.logSpaced(line.points || []); });
      const layout = charts.stepLayout(colors, entry.name, logSteps);
      layout.showlegend = true;
      layout.legend = { orientation: "h", y: -0.25 };
      window.Plotly.newPlot(figure.querySelector(".chart-plot"), traces, layout, charts.PLOT_CONFIG);
    });
  }

  function start() {
    if (!window.Plotly || !charts) return;
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
