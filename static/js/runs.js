/*
 * Live runs: status badges, progress bars and charts that follow a run while it works.
 *
 * Every element with data-run-id and a data-status-url (the server renders one for each
 * queued or running run) is polled about once a second at that URL, /runs/<id>/status.json:
 * the API's run representation (as /api/runs/<id>/), without the API's throttles. Each answer updates the run's status badge, progress bar and
 * message wherever the page shows it, and its step charts on the run page. When a run
 * finishes, the page is fetched again and its <main> swapped in, once, so the verdict,
 * metrics, artifacts and the idea's status history appear without a manual reload; the run page
 * is fetched the same way each time a composite run finishes a part, so its findings show at once.
 *
 * Charts: the run page embeds the step series with json_script, and the attempt and step its
 * polls start from (data-series-attempt, data-series-since); plotly.js (served from static, no
 * CDN) draws one line chart per metric. Each poll asks only for the points after the last step
 * the page holds (?series_since=<step>&series_attempt=<attempt>, see docs/api.md) and appends
 * them to the charts (Plotly.extendTraces). When the run was retried (series_reset) the page
 * takes the whole series it is sent; when its point counts disagree with the run's
 * (series_counts: points it could not have asked for by step) it fetches the run whole once.
 * A composite run's parts name their series "<part>/<metric>": each metric gets one chart
 * with a line per part (depths as lines), titled in the kind's words (data-labels-script).
 * Figures a run saved as plotly JSON artifacts are fetched and drawn the same way; those
 * inside a closed <details> (a part's figures) are drawn when it is opened.
 */
(function () {
  "use strict";

  const POLL_MS = 1000;
  const MAX_BACKOFF_MS = 10000;
  const LABELS = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled" };
  const polling = new Map(); // run id -> the token of its one poll loop
  // run id -> {series, attempt, since}: the step series the page holds, the attempt they belong to and the
  // step its next poll asks from. No entry: the next poll fetches the run whole.
  const held = new Map();
  let refreshTimer = null;

  function sleep(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  function shownRuns(id) {
    return document.querySelectorAll('[data-run-id="' + id + '"]');
  }

  // --- status, progress and message ------------------------------------------------------------

  function applyStatus(run, series) {
    const percent = Math.round(Math.max(0, Math.min(1, run.progress || 0)) * 100);
    const label = LABELS[run.status] || run.status;
    shownRuns(run.id).forEach(function (element) {
      element.dataset.status = run.status;
      element.querySelectorAll(".js-run-status").forEach(function (badge) {
        badge.className = "badge run-status run-status-" + run.status + " js-run-status";
        badge.textContent = label;
      });
      element.querySelectorAll('[role="progressbar"]').forEach(function (bar) {
        bar.setAttribute("aria-valuenow", String(percent));
        bar.setAttribute("aria-valuetext", percent + "%" + (run.progress_message ? ": " + run.progress_message : ""));
        const fill = bar.querySelector(".progress-fill");
        if (fill) fill.style.width = percent + "%";
      });
      element.querySelectorAll(".js-run-percent").forEach(function (text) { text.textContent = percent + "%"; });
      element.querySelectorAll(".js-run-message").forEach(function (text) {
        text.textContent = run.progress_message || (run.status === "queued" ? queuedMessage(run) : "");
      });
      element.querySelectorAll(".js-run-waiting").forEach(function (text) {
        // Set while queued with no live worker on its queue (e.g. no GPU worker); gone once one starts.
        text.textContent = run.waiting_for || "";
        text.hidden = !run.waiting_for;
      });
      element.querySelectorAll(".js-run-elapsed").forEach(function (text) {
        if (run.elapsed_seconds != null) text.textContent = durationWords(run.elapsed_seconds);
      });
      element.querySelectorAll(".js-run-left").forEach(function (text) {
        const known = run.seconds_left != null;
        if (known) text.textContent = durationWords(run.seconds_left);
        const wrap = text.closest(".js-run-left-wrap");
        if (wrap) wrap.hidden = !known;
      });
    });
    if (!series) return; // out of step with the run: the next poll fetches it whole
    document.querySelectorAll('[data-charts-run="' + run.id + '"]').forEach(function (container) {
      (run.parts || []).forEach(function (part) { labelsFor(container).parts[part.key] = part.label; });
      drawSeries(container, series);
    });
  }

  // --- the step series, a poll at a time -------------------------------------------------------

  // The page's own copy of the embedded series, and where its polls start (the server wrote both).
  function seedSeries(id) {
    if (held.has(id)) return;
    const container = document.querySelector('[data-charts-run="' + id + '"][data-series-since]');
    const script = container && document.getElementById(container.dataset.seriesScript);
    if (!script) return;
    try {
      held.set(id, {
        series: JSON.parse(script.textContent) || {},
        attempt: Number(container.dataset.seriesAttempt),
        since: Number(container.dataset.seriesSince),
      });
    } catch (error) {
      held.delete(id); // the first poll fetches the run whole
    }
  }

  function pollUrl(url, state) {
    if (!state) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "series_since=" + state.since + "&series_attempt=" + state.attempt;
  }

  // The series the run's status.json answer leaves the page with, or null when the page is out of step.
  function takeSeries(id, run) {
    const state = held.get(id);
    if (run.series_since === undefined || run.series_reset || !state) {
      // The whole series: a first poll, a resynchronisation, or a retried attempt that started over.
      const whole = { series: run.series || {}, attempt: run.series_attempt, since: run.series_next_since };
      if (whole.attempt === undefined) whole.attempt = run.started_at ? run.attempts : 0; // as experiments/series.py
      if (whole.since === undefined) whole.since = lastWrittenStep(whole.series, run.parts || []);
      held.set(id, whole);
      return whole.series;
    }
    Object.keys(run.series || {}).forEach(function (name) {
      const mine = state.series[name] || (state.series[name] = []);
      const last = mine.length ? mine[mine.length - 1][0] : -Infinity;
      run.series[name].forEach(function (point) { if (point[0] > last) mine.push(point); });
    });
    const counts = run.series_counts || {};
    const inStep = Object.keys(counts).every(function (name) { return (state.series[name] || []).length === counts[name]; })
      && Object.keys(state.series).every(function (name) { return name in counts; });
    if (!inStep) { held.delete(id); return null; }
    state.attempt = run.series_attempt;
    state.since = run.series_next_since;
    return state.series;
  }

  // The last step among the series still being written (a finished part's are not): the server's
  // series_next_since, for an answer fetched whole.
  function lastWrittenStep(series, parts) {
    const finished = new Set(parts.map(function (part) { return part.key; }));
    let step = 0;
    Object.keys(series).forEach(function (name) {
      const points = series[name];
      const slash = name.indexOf("/");
      if (!points.length || (slash >= 0 && finished.has(name.slice(0, slash)))) return;
      step = Math.max(step, points[points.length - 1][0]);
    });
    return step;
  }

  // A queued run's progress text: whether a worker is there and it waits its turn, or none consumes its queue
  // (the run page says more in its .js-run-waiting box).
  function queuedMessage(run) {
    if (!run.waiting_for) return "waiting for a worker";
    return run.queue === "gpu" ? "waiting for a GPU worker (none is running)"
      : "waiting for a worker (none consumes the " + run.queue + " queue)";
  }

  // The same words as the server's duration_words: 420 ms, 12.3 s, 3 min 5 s, 2 h 1 min.
  function durationWords(seconds) {
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    const total = Math.round(seconds);
    const minutes = Math.floor(total / 60);
    if (minutes < 60) return minutes + " min " + (total % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  async function poll(id, url, token) {
    let wait = POLL_MS;
    while (polling.get(id) === token) {
      await sleep(wait);
      if (document.hidden) { wait = POLL_MS * 3; continue; } // a background tab polls slowly
      let run;
      try {
        const response = await fetch(pollUrl(url, held.get(id)), { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.status === 404) { if (polling.get(id) === token) polling.delete(id); return; }
        if (!response.ok) throw new Error("HTTP " + response.status);
        run = await response.json();
        wait = POLL_MS;
      } catch (error) {
        wait = Math.min(wait * 2, MAX_BACKOFF_MS); // the server is busy or gone: back off, keep trying
        continue;
      }
      if (polling.get(id) !== token) return; // the page was refreshed meanwhile
      applyStatus(run, takeSeries(id, run));
      if (partsGrew(run)) scheduleRefresh(); // a composite run finished a part: show its findings now
      if (!LABELS[run.status] || run.status === "queued" || run.status === "running") continue;
      polling.delete(id);
      scheduleRefresh();
    }
  }

  // Whether the run has finished more parts than the page (data-parts on the run's element) shows.
  function partsGrew(run) {
    return Array.from(shownRuns(run.id)).some(function (element) {
      return element.dataset.parts !== undefined && (run.parts || []).length > Number(element.dataset.parts);
    });
  }

  function watch(root) {
    root.querySelectorAll("[data-run-id][data-status-url]").forEach(function (element) {
      const id = element.dataset.runId;
      if (polling.has(id)) return;
      seedSeries(id);
      const token = {};
      polling.set(id, token);
      poll(id, element.dataset.statusUrl, token);
    });
  }

  // --- refreshing the page once a run finishes -------------------------------------------------

  function scheduleRefresh() {
    // Several runs finishing together make one refresh.
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, 250);
  }

  async function refresh() {
    const main = document.getElementById("main");
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("main");
      if (!main || !fresh) throw new Error("no <main> to swap");
      const messages = main.querySelector(":scope > .messages"); // shown once by the server: keep them
      fresh.querySelectorAll("script[src]").forEach(function (script) { script.remove(); }); // already loaded
      if (messages && !fresh.querySelector(":scope > .messages")) fresh.prepend(messages);
      // What the reader opened (a part, the log, a list of checkpoints) stays open.
      const opened = Array.from(main.querySelectorAll("details[open][id]")).map(function (details) { return details.id; });
      polling.clear();
      held.clear(); // the fresh page embeds the series and where to poll from
      main.replaceChildren.apply(main, Array.from(fresh.childNodes));
      opened.forEach(function (id) {
        const details = document.getElementById(id);
        if (details && details.tagName === "DETAILS") details.open = true;
      });
      start(main);
    } catch (error) {
      window.location.reload();
    }
  }

  // --- charts -----------------------------------------------------------------------------------

  // Colours, axes and plotly options shared with the compare page (charts.js, loaded first).
  const charts = window.siteCharts;

  // A saved figure keeps its own titles and legend; only the colours follow the page.
  function figureLayout(own) {
    const colors = charts.theme();
    const axis = charts.axisStyle(colors);
    const layout = Object.assign(
      {
        margin: { l: 56, r: 16, t: own.title ? 48 : 16, b: 44 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { family: colors.font, size: 12, color: colors.text },
      },
      own
    );
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) layout[key] = Object.assign({}, axis, layout[key]);
    });
    ["xaxis", "yaxis"].forEach(function (key) { if (!layout[key]) layout[key] = Object.assign({}, axis); });
    return layout;
  }

  function labelsFor(container) {
    if (!container.chartLabels) {
      const script = container.dataset.labelsScript && document.getElementById(container.dataset.labelsScript);
      let labels = {};
      try { labels = script ? JSON.parse(script.textContent) : {}; } catch (error) { labels = {}; }
      container.chartLabels = { series: labels.series || {}, parts: labels.parts || {} };
    }
    return container.chartLabels;
  }

  // "L2/loss" -> {metric: "loss", part: "L2"}; "loss" -> {metric: "loss", part: ""}.
  function splitName(name) {
    const slash = name.indexOf("/");
    return slash < 0 ? { metric: name, part: "" } : { metric: name.slice(slash + 1), part: name.slice(0, slash) };
  }

  // The y axis carries the unit when the words end with one in brackets ("... (nats)"); the caption has the rest.
  function axisTitle(words) {
    const unit = /\(([^()]*)\)\s*$/.exec(words);
    return unit ? unit[1] : words;
  }

  function sentence(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function chartFor(container, metric, title) {
    const existing = Array.from(container.querySelectorAll(".chart")).find(function (figure) {
      return figure.dataset.metric === metric;
    });
    if (existing) return existing;
    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.dataset.metric = metric;
    const caption = document.createElement("figcaption");
    caption.textContent = title + " by step";
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    plot.setAttribute("role", "img");
    plot.setAttribute("aria-label", "Line chart of " + title + " by step");
    figure.append(caption, plot);
    container.append(figure);
    const empty = container.parentElement && container.parentElement.querySelector(".charts-empty");
    if (empty) empty.remove();
    return figure;
  }

  function drawSeries(container, series) {
    if (!window.Plotly || !charts) return;
    const colors = charts.theme();
    const labels = labelsFor(container);
    const byMetric = new Map(); // metric -> [{part, points}], in the order the series came
    Object.keys(series).forEach(function (name) {
      const split = splitName(name);
      if (!byMetric.has(split.metric)) byMetric.set(split.metric, []);
      byMetric.get(split.metric).push({ part: split.part, points: series[name] || [] });
    });
    byMetric.forEach(function (lines, metric) {
      const words = labels.series[metric] || metric.replace(/_/g, " ");
      const traces = lines.map(function (line, i) {
        const color = lines.length > 1 ? colors.series[i % colors.series.length] : colors.accent;
        return charts.stepTrace(line.points, line.part ? labels.parts[line.part] || line.part : words, color);
      });
      const logSteps = lines.every(function (line) { return charts.logSpaced(line.points); });
      const layout = charts.stepLayout(colors, axisTitle(words), logSteps);
      if (lines.length > 1) {
        layout.showlegend = true;
        layout.legend = { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 };
        layout.margin.t = 36;
      }
      const plot = chartFor(container, metric, sentence(words)).querySelector(".chart-plot");
      if (!appendPoints(plot, traces, logSteps)) window.Plotly.react(plot, traces, layout, charts.PLOT_CONFIG);
      plot.dataset.logSteps = String(logSteps);
    });
  }

  // Adds to a drawn chart the points its lines lack (Plotly.extendTraces), when it shows the same lines as
  // `traces` do so far, in the same style and on the same step axis; false when it needs drawing anew.
  function appendPoints(plot, traces, logSteps) {
    const drawn = plot.data;
    if (!drawn || drawn.length !== traces.length || plot.dataset.logSteps !== String(logSteps)) return false;
    const x = [];
    const y = [];
    const indices = [];
    for (let i = 0; i < traces.length; i += 1) {
      const old = drawn[i];
      const length = old.x.length;
      const fresh = traces[i];
      if (old.name !== fresh.name || old.mode !== fresh.mode || length > fresh.x.length) return false;
      if (length && old.x[length - 1] !== fresh.x[length - 1]) return false;
      if (fresh.x.length > length) {
        indices.push(i);
        x.push(fresh.x.slice(length));
        y.push(fresh.y.slice(length));
      }
    }
    if (indices.length) window.Plotly.extendTraces(plot, { x: x, y: y }, indices);
    return true;
  }

  function drawEmbeddedSeries(root) {
    root.querySelectorAll("[data-charts-run][data-series-script]").forEach(function (container) {
      const script = document.getElementById(container.dataset.seriesScript);
      if (!script) return;
      try {
        drawSeries(container, JSON.parse(script.textContent));
      } catch (error) {
        container.textContent = "Could not draw the charts: " + error.message;
      }
    });
  }

  async function drawFigureArtifacts(root) {
    const targets = root.querySelectorAll(".js-plotly-artifact[data-src]");
    for (const target of targets) {
      if (!window.Plotly || !charts) return;
      const closed = target.closest("details:not([open])");
      if (target.dataset.drawn || closed) continue; // a closed part is drawn when it opens (plotly needs its size)
      target.dataset.drawn = "1";
      try {
        const response = await fetch(target.dataset.src, { credentials: "same-origin" });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const figure = await response.json();
        window.Plotly.newPlot(target, figure.data || [], figureLayout(figure.layout || {}), charts.PLOT_CONFIG);
      } catch (error) {
        target.textContent = "Could not draw this figure (" + error.message + "); download it below.";
      }
    }
  }

  // --- start ------------------------------------------------------------------------------------

  function start(root) {
    drawEmbeddedSeries(root);
    drawFigureArtifacts(root);
    root.querySelectorAll("details").forEach(function (details) {
      details.addEventListener("toggle", function () { if (details.open) drawFigureArtifacts(details); });
    });
    watch(root);
  }

  if (!window.fetch || !window.Promise) return; // very old browser: the pages work without this
  if (window.runsLive) return; // loaded twice on one page
  window.runsLive = true;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { start(document); });
  } else {
    start(document);
  }
})();
