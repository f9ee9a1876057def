"""factory_boy factories for the catalogue, and for experiment specs and their runs."""

import uuid
from datetime import timedelta

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from experiments.models import ExperimentRun, ExperimentSpec, RunStatus
from ideas.models import Collection, Idea, IdeaKind, IdeaStatus, Tag
from ideas.services import idea_excerpt

PASSWORD = "a-long-test-password-1"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    is_staff = True


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"tag {n}")
    slug = factory.LazyAttribute(lambda t: t.name.replace(" ", "-"))


class CollectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Collection
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"collection {n}")
    slug = factory.LazyAttribute(lambda c: c.name.replace(" ", "-"))


class IdeaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Idea

    title = factory.Sequence(lambda n: f"Idea number {n}")
    slug = factory.Sequence(lambda n: f"idea-number-{n}")
    kind = IdeaKind.HYPOTHESIS
    body = "Some *markdown* body."
    # As the services store it (ideas.services.idea_excerpt), so list pages show factory ideas' excerpts.
    excerpt = factory.LazyAttribute(lambda i: idea_excerpt(i.body))
    status = IdeaStatus.OPEN
    imported_votes = 0
    score = factory.LazyAttribute(lambda i: i.imported_votes)


# --- experiments ---------------------------------------------------------------------------------


def smoke_spec(idea, user, *, title="Count to three", criterion=None, seed=0, **params) -> ExperimentSpec:
    """A smoke spec written through `spec_create`, so validated and normalized; three steps unless told."""
    from experiments.services import spec_create

    return spec_create(
        idea=idea, user=user, title=title, kind="smoke", params={"steps": 3} | params, seed=seed, criterion=criterion
    )


def _validated(kind_key: str, params: dict):
    from experiments.services.specs import kind_get, params_validate

    kind = kind_get(kind_key)
    return kind, params_validate(kind, params)


def _normalized(kind_key: str, params: dict) -> dict:
    kind, validated = _validated(kind_key, params)
    return kind.normalized_params(validated)


def _spec_hash(run) -> str:
    from experiments.services.specs import spec_hash

    kind, validated = _validated(run.kind, run.params)
    return spec_hash(kind=kind, params=validated, seed=run.seed)


def _time_limits(run) -> tuple[int, int]:
    kind, validated = _validated(run.kind, run.params)
    return kind.time_limits(validated)


class ExperimentSpecFactory(factory.django.DjangoModelFactory):
    """A spec row as the service would write it (a three-step smoke test), without going through the service.

    Pass raw `params` to store a spec the service would refuse; use `smoke_spec` for one it accepted.
    """

    class Meta:
        model = ExperimentSpec

    idea = factory.SubFactory(IdeaFactory)
    author = factory.SubFactory(UserFactory)
    title = "Count to three"
    kind = "smoke"
    params = factory.LazyAttribute(lambda spec: _normalized(spec.kind, {"steps": 3}))
    seed = 0
    criterion = None


class ExperimentRunFactory(factory.django.DjangoModelFactory):
    """A run of a spec as `run_trigger` would queue it (its params, seed and hash), sent just now.

    Set `status`, `progress`, `metrics`... for a run further along; nothing executes.
    """

    class Meta:
        model = ExperimentRun

    spec = factory.SubFactory(ExperimentSpecFactory)
    kind = factory.SelfAttribute("spec.kind")
    params = factory.LazyAttribute(lambda run: _normalized(run.kind, run.spec.params))
    seed = factory.SelfAttribute("spec.seed")
    spec_hash = factory.LazyAttribute(_spec_hash)
    status = RunStatus.QUEUED
    queue = "cpu"
    soft_time_limit = factory.LazyAttribute(lambda run: _time_limits(run)[0])
    time_limit = factory.LazyAttribute(lambda run: _time_limits(run)[1])
    max_attempts = factory.LazyFunction(lambda: settings.RUN_MAX_ATTEMPTS)
    task_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    created_by = factory.SelfAttribute("spec.author")
    sent_at = factory.LazyFunction(timezone.now)


def finished_run(spec, verdict: str = "", *, minutes_ago: float = 0, status=RunStatus.SUCCEEDED, **fields):
    """A run of `spec` that finished `minutes_ago` (succeeded unless told), with this verdict; nothing executes."""
    finished_at = timezone.now() - timedelta(minutes=minutes_ago)
    return ExperimentRunFactory(
        spec=spec,
        status=status,
        verdict=verdict,
        progress=1.0 if status == RunStatus.SUCCEEDED else 0.5,
        started_at=finished_at - timedelta(seconds=3),
        finished_at=finished_at,
        **fields,
    )
