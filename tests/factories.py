"""factory_boy factories for the catalogue."""

import factory
from django.contrib.auth import get_user_model

from ideas.models import Collection, Idea, IdeaKind, IdeaStatus, Tag

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
    status = IdeaStatus.OPEN
    imported_votes = 0
    score = factory.LazyAttribute(lambda i: i.imported_votes)
