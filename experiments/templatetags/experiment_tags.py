"""`{% idea_experiments idea %}`: the idea page's Experiments section, and `{% idea_evidence_line idea %}`: the
line under its title that sums up their verdicts, rendered by the app that owns them.

The idea page only names the idea; the specs, their newest runs and how they read come
from `experiments.views.presenters.spec_cards`, the evidence from `experiments.selectors.idea_evidence`
(which the API's idea detail shows too), so `ideas` imports nothing of `experiments`.
"""

from __future__ import annotations

from django import template
from django.template.context import Context
from django.utils.safestring import SafeString

from experiments.selectors import idea_evidence
from experiments.views.evidence import no_verdict_words, verdict_counts_words
from experiments.views.presenters import spec_cards

register = template.Library()

SECTION_TEMPLATE = "experiments/_idea_experiments.html"
EVIDENCE_TEMPLATE = "experiments/_idea_evidence.html"


@register.simple_tag(takes_context=True)
def idea_experiments(context: Context, idea) -> SafeString:
    """Each spec of `idea` with its newest runs (two queries), in the page's own context (user, csrf)."""
    section = context.template.engine.get_template(SECTION_TEMPLATE)
    with context.push(idea=idea, experiment_cards=spec_cards(idea_id=idea.pk)):
        return section.render(context)


@register.inclusion_tag(EVIDENCE_TEMPLATE)
def idea_evidence_line(idea) -> dict:
    """The idea header's line of evidence (two queries): each experiment's latest verdict, counted, and the newest."""
    evidence = idea_evidence(idea_id=idea.pk)
    return {
        "evidence": evidence,
        "counts_words": verdict_counts_words(evidence),
        "no_verdict_words": no_verdict_words(evidence),
    }
