/*
 * What the site's plotly charts share (runs.js on a run's page, run_compare.js on the compare page):
 * colours from the stylesheet, so charts follow the light and dark themes, the axes and margins of a
 * step chart, and plotly's options. Load it before either script.
 */
(function () {
  "use strict";

  const FALLBACK_SERIES = ["#4338ca", "#d97706", "#059669", "#db2777", "#0891b2", "#7c3aed"];

  // The page's colours: text, grid, accent, and one colour per line (--series-0 ... from site.css).
  function theme() {
    const style = window.getComputedStyle(document.documentElement);
    const value = function (name, fallback) { return style.getPropertyValue(name).trim() || fallback; };
    return {
      text: value("--text", "#1b2130"),
      muted: value("--muted", "#5d6678"),
      grid: value("--border", "#e2e5eb"),
      accent: value("--accent", "#4338ca"),
      font: value("--font", "system-ui, sans-serif"),
      series: FALLBACK_SERIES.map(function (color, index) { return value("--series-" + index, color); }),
    };
  }

  function axisStyle(colors) {
    return { gridcolor: colors.grid, zerolinecolor: colors.grid, linecolor: colors.grid, color: colors.muted };
  }

  // Whether the steps of these points were logged at growing, log-spaced intervals (a long training run such as
  // grokking's): spanning at least two decades, with the last gap at least ten times the first.
  function logSpaced(points) {
    const steps = points.map(function (point) { return point[0]; }).filter(function (step) { return step > 0; });
    if (steps.length < 5) return false;
    const first = steps[1] - steps[0];
    const last = steps[steps.length - 1] - steps[steps.length - 2];
    return steps[steps.length - 1] / steps[0] >= 100 && first > 0 && last >= 10 * first;
  }

  // A line chart by training step, its y axis titled `yTitle`; `logSteps` draws the steps on a log axis.
  function stepLayout(colors, yTitle, logSteps) {
    const axis = axisStyle(colors);
    const stepAxis = { title: { text: logSteps ? "step (log scale)" : "step" } };
    if (logSteps) stepAxis.type = "log";
    return {
      margin: { l: 56, r: 16, t: 12, b: 44 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: colors.font, size: 12, color: colors.text },
      xaxis: Object.assign(stepAxis, axis),
      yaxis: Object.assign({ title: { text: yTitle || "" } }, axis),
      showlegend: false,
      hovermode: "x",
    };
  }

  // One line of a step chart: [[step, value], ...] drawn in `color`, named `label`.
  function stepTrace(points, label, color) {
    return {
      x: points.map(function (point) { return point[0]; }),
      y: points.map(function (point) { return point[1]; }),
      name: label,
      type: "scatter",
      mode: points.length > 60 ? "lines" : "lines+markers",
      line: { color: color, width: 2 },
      marker: { color: color, size: 5 },
      hovertemplate: label + ": %{y}<br>step %{x}<extra></extra>",
    };
  }

  window.siteCharts = {
    theme: theme,
    axisStyle: axisStyle,
    stepLayout: stepLayout,
    logSpaced: logSpaced,
    stepTrace: stepTrace,
    PLOT_CONFIG: { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] },
  };
})();
