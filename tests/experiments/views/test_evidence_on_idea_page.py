"""The idea page's evidence: the header's one line (each experiment's latest verdict, counted) and each spec
card's latest result (its findings, verdict, partial or not)."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from experiments.models import RunStatus
from tests.experiments.views.conftest import html_of
from tests.factories import ExperimentRunFactory, ExperimentSpecFactory, finished_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

CRITERION = {
    "metric": "steps_completed",
    "comparator": ">=",
    "threshold": 5,
    "if_met": "supports",
    "otherwise": "refutes",
}


def spec_of(idea, title="Count"):
    return ExperimentSpecFactory(idea=idea, title=title, criterion=CRITERION)


def visible(fragment: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def evidence_line(page: str) -> str | None:
    """The header's evidence line as HTML, or None when the page has none."""
    match = re.search(r'<p class="evidence-line"[^>]*>(.*?)</p>', page, re.S)
    return match.group(1) if match else None


def card(page: str, spec) -> str:
    start = page.index(f'id="spec-{spec.pk}"')
    return page[start : page.index("</article>", start)]


def latest_result(page: str, spec) -> str | None:
    match = re.search(r'<div class="latest-result"[^>]*>(.*?)</div>', card(page, spec), re.S)
    return match.group(1) if match else None


def test_header_counts_each_experiments_latest_verdict_and_links_the_newest_run(client, hypothesis):
    first, second, third = spec_of(hypothesis, "first"), spec_of(hypothesis, "second"), spec_of(hypothesis, "third")
    finished_run(first, "refutes", minutes_ago=60)
    finished_run(first, "supports", minutes_ago=50)  # replaces first's refutation
    finished_run(second, "refutes", minutes_ago=40)
    newest = finished_run(third, "supports", minutes_ago=5)
    finished_run(third, "", minutes_ago=1, status=RunStatus.FAILED)  # not a verdict

    line = evidence_line(html_of(client.get(hypothesis.get_absolute_url())))

    assert visible(line) == f"2 experiments support, 1 refutes — latest: run {newest.pk} (supports)"
    assert f'<a href="/runs/{newest.pk}/">run {newest.pk}</a>' in line
    assert 'href="#experiments"' in line


def test_header_has_no_evidence_line_without_experiments(client, hypothesis):
    page = html_of(client.get(hypothesis.get_absolute_url()))
    assert evidence_line(page) is None
    assert "No experiments yet." in page


def test_header_says_so_when_experiments_have_no_verdict_yet(client, hypothesis):
    spec = spec_of(hypothesis)
    assert visible(evidence_line(html_of(client.get(hypothesis.get_absolute_url())))) == "1 experiment, not run yet"
    ExperimentRunFactory(spec=spec, status=RunStatus.RUNNING, progress=0.4)
    line = visible(evidence_line(html_of(client.get(hypothesis.get_absolute_url()))))
    assert line == "1 experiment, 1 run, no verdict"
    assert "latest" not in line


def test_spec_card_shows_its_latest_results_findings_and_verdict(client, hypothesis):
    spec = spec_of(hypothesis)
    finished_run(spec, "refutes", minutes_ago=30, findings=["An older finding."])
    latest = finished_run(
        spec, "supports", minutes_ago=10, findings=["2 of 4 depths form induction heads: 2L, 3L.", "Loss drops."]
    )

    result = latest_result(html_of(client.get(hypothesis.get_absolute_url())), spec)

    assert f'<a href="/runs/{latest.pk}/">run {latest.pk}</a>' in result
    assert re.findall(r"<li>(.*?)</li>", result) == ["2 of 4 depths form induction heads: 2L, 3L.", "Loss drops."]
    assert 'class="badge verdict verdict-supports"' in result
    assert "An older finding." not in result
    assert "partial" not in result and "more" not in result


def test_spec_card_shows_five_findings_and_links_the_rest(client, hypothesis):
    spec = spec_of(hypothesis)
    run = finished_run(spec, "supports", findings=[f"Finding {n}." for n in range(1, 8)])

    result = latest_result(html_of(client.get(hypothesis.get_absolute_url())), spec)

    assert re.findall(r"<li>(.*?)</li>", result) == [f"Finding {n}." for n in range(1, 6)]
    assert f'<a href="/runs/{run.pk}/">and 2 more</a>' in result


def test_a_partial_run_is_the_latest_result_and_is_marked_partial(client, hypothesis):
    spec = spec_of(hypothesis)
    finished_run(spec, "supports", minutes_ago=30, findings=["Full result."])
    partial = finished_run(
        spec, "", minutes_ago=5, status=RunStatus.CANCELLED, partial=True, findings=["1L: no induction head."]
    )

    result = latest_result(html_of(client.get(hypothesis.get_absolute_url())), spec)

    assert f"run {partial.pk}</a>" in result
    assert '<span class="badge partial"' in result and "partial, cancelled" in visible(result)
    assert "1L: no induction head." in result and "Full result." not in result
    assert "verdict-" not in result  # the partial run has none


def test_a_failed_run_with_nothing_kept_leaves_the_previous_result_shown(client, hypothesis):
    spec = spec_of(hypothesis)
    succeeded = finished_run(spec, "supports", minutes_ago=30, findings=["Kept."])
    failed = finished_run(spec, "", minutes_ago=5, status=RunStatus.FAILED, error="CUDA out of memory")

    page = html_of(client.get(hypothesis.get_absolute_url()))
    result = latest_result(page, spec)

    assert f"run {succeeded.pk}</a>" in result and "Kept." in result
    assert f'href="/runs/{failed.pk}/"' in card(page, spec)  # still in the run lines, with its error
    assert "CUDA out of memory" in card(page, spec)


def test_a_running_latest_run_shows_its_progress_beside_the_last_result(client, hypothesis):
    spec = spec_of(hypothesis)
    finished_run(spec, "refutes", minutes_ago=30, findings=["Before."])
    running = ExperimentRunFactory(spec=spec, status=RunStatus.RUNNING, progress=0.4, progress_message="step 2 of 5")

    page = html_of(client.get(hypothesis.get_absolute_url()))
    spec_card = card(page, spec)

    assert "Before." in latest_result(page, spec)
    assert f'data-status-url="/runs/{running.pk}/status.json"' in spec_card
    assert 'aria-valuenow="40"' in spec_card and "step 2 of 5" in spec_card


def test_a_spec_never_finished_shows_no_latest_result(client, hypothesis):
    spec = spec_of(hypothesis)
    ExperimentRunFactory(spec=spec)
    assert latest_result(html_of(client.get(hypothesis.get_absolute_url())), spec) is None


def test_findings_are_escaped(client, hypothesis):
    spec = spec_of(hypothesis)
    finished_run(spec, "supports", findings=["<script>alert(1)</script> heads & <b>layers</b>"])
    result = latest_result(html_of(client.get(hypothesis.get_absolute_url())), spec)
    assert "<script>" not in result and "<b>" not in result
    assert "&lt;script&gt;alert(1)&lt;/script&gt; heads &amp; &lt;b&gt;layers&lt;/b&gt;" in result


def test_idea_page_queries_stay_constant_with_evidence_and_findings(client, hypothesis, django_assert_max_num_queries):
    def add_specs(n: int) -> None:
        for k in range(n):
            spec = spec_of(hypothesis, f"spec {k}")
            finished_run(spec, "supports" if k % 2 else "refutes", minutes_ago=20, findings=["A.", "B."])
            finished_run(spec, "", minutes_ago=10, status=RunStatus.CANCELLED, partial=True, findings=["C."])
            ExperimentRunFactory(spec=spec, status=RunStatus.RUNNING, progress=0.2)

    add_specs(1)
    with django_assert_max_num_queries(100) as one:
        assert client.get(hypothesis.get_absolute_url()).status_code == 200
    add_specs(5)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = html_of(client.get(hypothesis.get_absolute_url()))
    assert page.count('<div class="latest-result"') == 6
    assert visible(evidence_line(page)).startswith("2 experiments support, 4 refute —")
