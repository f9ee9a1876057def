"""`{% idea_experiments idea %}`: the idea page's Experiments section, rendered by the app that owns it.

The idea page only names the idea; the specs, their newest runs and how they read come
from `experiments.views.presenters.spec_cards`, so `ideas` imports nothing of `experiments`.
"""

from __future__ import annotations

from django import template
from django.template.context import Context
from django.utils.safestring import SafeString

from experiments.views.presenters import spec_cards

register = template.Library()

SECTION_TEMPLATE = "experiments/_idea_experiments.html"


@register.simple_tag(takes_context=True)
def idea_experiments(context: Context, idea) -> SafeString:
    """Each spec of `idea` with its newest runs (two queries), in the page's own context (user, csrf)."""
    section = context.template.engine.get_template(SECTION_TEMPLATE)
    with context.push(idea=idea, experiment_cards=spec_cards(idea_id=idea.pk)):
        return section.render(context)
