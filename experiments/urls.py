"""Page routes of the experiments: adding a spec, running it, runs and their files, uploaded datasets.

/ideas/<pk>/experiments/new/ sits beside the catalogue's /ideas/<pk>/<slug>/;
`unique_slug` never hands out "experiments" as a slug.
"""

from django.urls import path

from experiments.views import actions, compare, data, datasets, run_list, runs, specs, workers

urlpatterns = [
    path("ideas/<int:pk>/experiments/new/", specs.spec_create_page, name="spec-create"),
    path("specs/<int:pk>/run/", actions.spec_run_action, name="spec-run"),
    path("runs/", run_list.run_list_page, name="run-list"),
    path("runs/compare/", compare.run_compare_page, name="run-compare"),
    path("runs/<int:pk>/", runs.run_detail_page, name="run-detail"),
    path("runs/<int:pk>/cancel/", actions.run_cancel_action, name="run-cancel"),
    path("runs/<int:pk>/artifacts/<str:name>/", data.artifact_download_page, name="artifact-download"),
    path("datasets/", datasets.dataset_list_page, name="dataset-list"),
    path("datasets/<int:pk>/delete/", datasets.dataset_delete_action, name="dataset-delete"),
    path("staff/workers/", workers.workers_page, name="staff-workers"),
]
