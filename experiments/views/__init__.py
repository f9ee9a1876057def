"""The experiment pages, server-rendered, with static/js/runs.js keeping runs live.

One module per job: adding a spec (`specs`), pressing Run, Replicate or Cancel
(`actions`), the run page (`runs`), the list of runs with its filters, sorting and metric
columns (`run_list`), two to six runs side by side (`compare`), uploaded datasets
(`datasets`), and the machine-readable answers those pages use: a run's status as
JSON and artifact downloads (`data`).
`presenters` turns rows into words (criteria, params, durations) and `common`
holds the helpers they share. Each view parses, calls one service or selector,
and renders.
"""
