"""The load benchmark's catalogue (benchmarks/api.py): its own PostgreSQL database, seeded once per code version.

The data has the shape the issue measured: per 10,000 ideas, 100,000 votes and
15,000 tag links, plus collections and a few experiment specs with runs, so each
part of a list row costs what it costs in a real catalogue. Bodies are markdown
of a catalogue idea's length (paragraphs, lists, links, "idea #N" references).
Two words are planted for search: RARE_WORD in RARE_COUNT ideas whatever the
size, COMMON_WORD in about half of them.

Ideas go in with `bulk_create` and votes with COPY, so columns and triggers the
project's migrations define are filled by the database as on any insert.
`check_seed_matches_services` then creates one idea through `idea_create` (rolled
back) and stops the benchmark if the service fills a column the seed leaves empty
(an excerpt computed in Python, say): numbers on half-filled rows would mislead.

The database is seeded again whenever the migrations, this module or the size
change (a fingerprint kept as the database's comment), so a run always measures
the schema of the code it runs.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SEED = 14
RARE_WORD = "quokka"
RARE_COUNT = 8
COMMON_WORD = "circuit"
VOTES_PER_IDEA = 10  # on average: 100,000 votes for 10,000 ideas
TAG_COUNT = 60
COLLECTIONS = (
    "Interpretability hackathon",
    "Alignment jam",
    "MATS projects",
    "Reading group",
    "Evals sprint",
    "Unassigned backlog",
)
# Fields the seed and `idea_create` may set differently on purpose (see check_seed_matches_services).
SEEDED_OWN_WAY = frozenset(
    {"id", "slug", "legacy_number", "score", "imported_votes", "status", "author_id", "created_at", "updated_at"}
)

TOPICS = (
    "induction heads",
    "superposition",
    "sparse autoencoders",
    "activation patching",
    "reward hacking",
    "deceptive alignment",
    "grokking",
    "linear probes",
    "steering vectors",
    "refusal directions",
    "sycophancy",
    "jailbreaks",
    "scalable oversight",
    "debate",
    "model editing",
    "factual recall",
    "attention patterns",
    "polysemantic neurons",
    "feature splitting",
    "the logit lens",
    "path patching",
    "causal scrubbing",
    "in-context learning",
    "chain of thought",
    "situational awareness",
    "emergent misalignment",
    "weight decay",
    "phase changes",
    "memorization",
    "distribution shift",
)
MODELS = (
    "a 2-layer attention-only model",
    "GPT-2 small",
    "Pythia-410M",
    "a one-layer transformer",
    "a toy model of superposition",
    "a modular addition model",
    "Llama-2-7B",
    "a 4-layer model trained on code",
)
METHODS = (
    "activation patching",
    "attribution patching",
    "linear probes",
    "ablations of single heads",
    "a sparse autoencoder on the residual stream",
    "the logit lens",
    "composition scores",
    "integrated gradients",
)
METRICS = ("the loss", "the logit difference", "probe accuracy", "the KL divergence", "the refusal rate")
VERBS = ("Investigate", "Measure", "Explain", "Compare", "Find", "Replicate", "Automate the search for")
SENTENCES = (
    "Train {model} on {task} and look for {topic}.",
    "Does {topic} explain how {model} handles {task}?",
    "Compare {topic} in {model} and {model2} using {method}.",
    "We expect {method} to reveal {topic} after a few thousand steps.",
    "If {topic} matters here, removing it should hurt {metric} on {task}.",
    "Measure how {metric} changes when {topic} is suppressed.",
    "Earlier work found {topic} in {model}; it is unclear whether this holds at scale.",
    "A negative result would still tell us something about {topic}.",
    "Start with {method}, then check the finding with a second method.",
    "Plot {metric} over training and mark where {topic} appears.",
)
TASKS = ("repeated random tokens", "modular addition", "indirect object identification", "factual recall prompts")
BULLETS = (
    "Look for composition between heads in different layers",
    "Ablate one component at a time and record {metric}",
    "Check whether the effect survives a different random seed",
    "Repeat on {model}",
    "Write up what {method} shows and what it cannot show",
)
COMMON_SENTENCES = (
    "Which {word} implements {topic}, and can we find it automatically?",
    "The {word} behind {topic} may be shared across {model} and {model2}.",
    "Map the {word} from the embedding to the output for {task}.",
)
RARE_SENTENCE = "Call this the {word} test: it should fail loudly on {model}."


@dataclass(frozen=True)
class SeedSummary:
    ideas: int
    users: int
    votes: int
    tag_links: int
    collection_links: int
    specs: int
    runs: int
    rare_hits: int
    common_hits: int

    def describe(self) -> str:
        return (
            f"{self.ideas:,} ideas, {self.votes:,} votes by {self.users:,} users, {self.tag_links:,} tag links "
            f"({TAG_COUNT} tags), {self.collection_links:,} collection links, {self.specs:,} experiment specs with "
            f"{self.runs:,} runs; search words: {RARE_WORD!r} in {self.rare_hits:,} ideas, {COMMON_WORD!r} in "
            f"{self.common_hits:,}"
        )


def fingerprint(n_ideas: int) -> str:
    """Changes with every migration file, with this module and with the size."""
    digest = hashlib.sha256(f"ideas={n_ideas}".encode())
    for path in sorted([*ROOT.glob("*/migrations/*.py"), Path(__file__)]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def prepare_database(server_url: str, name: str, wanted: str, *, force: bool) -> bool:
    """Make sure database `name` exists; True when it must be (re)seeded: new, forced, or its fingerprint differs.

    `server_url` is a libpq URL of a database to connect to for CREATE/DROP (usually `postgres`).
    """
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if row is not None and row[0] == wanted and not force:
            return False
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def mark_seeded(server_url: str, name: str, stamp: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(stamp)))


def _sentence(rng: random.Random, template: str) -> str:
    model, model2 = rng.sample(MODELS, 2)
    return template.format(
        model=model,
        model2=model2,
        topic=rng.choice(TOPICS),
        method=rng.choice(METHODS),
        metric=rng.choice(METRICS),
        task=rng.choice(TASKS),
        word=COMMON_WORD,
    )


def idea_text(rng: random.Random, i: int, *, n_legacy: int, rare: bool, common: bool) -> tuple[str, str]:
    """(title, markdown body) of the i-th idea: 3-4 paragraphs, sometimes a list, a link or an "idea #N"."""
    topic = rng.choice(TOPICS)
    title = f"{rng.choice(VERBS)} {topic} in {rng.choice(MODELS)}"
    if common and rng.random() < 0.2:
        title = f"{title}: the {COMMON_WORD} view"
    paragraphs = []
    for _ in range(rng.randint(3, 4)):
        sentences = [_sentence(rng, rng.choice(SENTENCES)) for _ in range(rng.randint(3, 5))]
        paragraphs.append(" ".join(sentences))
    if common:
        paragraphs[rng.randrange(len(paragraphs))] += " " + _sentence(rng, rng.choice(COMMON_SENTENCES))
    if rare:
        paragraphs[-1] += " " + RARE_SENTENCE.format(word=RARE_WORD, model=rng.choice(MODELS))
    if rng.random() < 0.5:
        paragraphs.insert(2, "\n".join(f"- {_sentence(rng, b)}" for b in rng.sample(BULLETS, rng.randint(2, 4))))
    if rng.random() < 0.4:
        arxiv_id = f"2{rng.randint(100, 499)}.{rng.randint(10000, 99999)}"
        paragraphs[0] += f" See [the paper](https://arxiv.org/abs/{arxiv_id})."
    if rng.random() < 0.2:
        paragraphs[-1] += f" Builds on idea #{rng.randint(1, n_legacy)}, with **{rng.choice(METHODS)}**."
    return title, "\n\n".join(paragraphs)


def idea_objects(rng: random.Random, vote_counts: list[int], user_ids: list[int]) -> tuple[list, int]:
    """(unsaved ideas, how many bodies have COMMON_WORD): one idea per entry of `vote_counts`, its votes to come."""
    from django.utils.text import slugify

    from ideas.models import STATUSES_BY_KIND, Idea, IdeaKind
    from ideas.services import idea_excerpt

    n_ideas = len(vote_counts)
    rare_at = set(rng.sample(range(n_ideas), min(RARE_COUNT, n_ideas)))
    n_legacy = min(n_ideas, 1000)
    weights = {IdeaKind.HYPOTHESIS: (60, 15, 8, 7, 5, 5), IdeaKind.OPEN_ENDED: (65, 20, 10, 5)}
    common_hits, ideas = 0, []
    for i, votes in enumerate(vote_counts):
        common = rng.random() < 0.5
        common_hits += common
        title, body = idea_text(rng, i, n_legacy=n_legacy, rare=i in rare_at, common=common)
        kind = IdeaKind.HYPOTHESIS if rng.random() < 0.6 else IdeaKind.OPEN_ENDED
        imported = rng.randint(0, 20)
        idea = Idea(
            title=title,
            slug=f"{slugify(title)[:100]}-{i}",
            kind=kind,
            body=body,
            excerpt=idea_excerpt(body),
            status=rng.choices(STATUSES_BY_KIND[kind], weights[kind])[0],
            imported_votes=imported,
            score=imported + votes,
            legacy_number=i + 1 if i < n_legacy else None,
            author_id=None if rng.random() < 0.05 or not user_ids else rng.choice(user_ids),
        )
        ideas.append(idea)
    return ideas, common_hits


def seed(n_ideas: int) -> SeedSummary:
    """Fill the (empty, migrated) database Django is set up on. Deterministic for a given size."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone
    from django.utils.text import slugify

    from experiments.models import ExperimentRun, ExperimentSpec
    from ideas.models import Collection, Idea, Tag, Vote

    rng = random.Random(SEED)
    user_model = get_user_model()
    n_users = max(1000, n_ideas // 10)
    password = make_password(None)  # unusable: nobody signs in as these users
    users = user_model.objects.bulk_create(
        [user_model(username=f"reader{i:06d}", password=password) for i in range(n_users)], batch_size=5000
    )
    user_ids = [u.pk for u in users]
    tags = Tag.objects.bulk_create(
        [Tag(name=f"{topic} {k}" if k else topic, slug=slugify(f"{topic} {k}")) for k in (0, 1) for topic in TOPICS]
    )[:TAG_COUNT]
    collections = Collection.objects.bulk_create([Collection(name=name, slug=slugify(name)) for name in COLLECTIONS])

    vote_counts = [min(n_users, round(rng.expovariate(1 / VOTES_PER_IDEA))) for _ in range(n_ideas)]
    ideas, common_hits = idea_objects(rng, vote_counts, user_ids)
    with transaction.atomic():
        idea_ids = [idea.pk for idea in Idea.objects.bulk_create(ideas, batch_size=2000)]
    del ideas

    now = timezone.now()
    votes = 0
    connection.ensure_connection()
    with transaction.atomic(), connection.connection.cursor() as cursor:
        columns = ", ".join(Vote._meta.get_field(f).column for f in ("user", "idea", "created_at"))
        with cursor.copy(f"COPY {Vote._meta.db_table} ({columns}) FROM STDIN") as copy:
            for idea_id, count in zip(idea_ids, vote_counts, strict=True):
                for user_id in rng.sample(user_ids, count):
                    copy.write_row((user_id, idea_id, now))
                votes += count

    tag_weights = [1 / (k + 1) for k in range(len(tags))]  # a few popular tags, a long tail
    tag_links = []
    for idea_id in idea_ids:
        wanted, picked = (1 if rng.random() < 0.5 else 2), set()
        while len(picked) < wanted:
            picked.add(rng.choices(tags, tag_weights)[0].pk)
        tag_links += [Idea.tags.through(idea_id=idea_id, tag_id=tag_id) for tag_id in picked]
    Idea.tags.through.objects.bulk_create(tag_links, batch_size=5000)
    collection_links = [
        Idea.collections.through(idea_id=idea_id, collection_id=rng.choice(collections).pk)
        for idea_id in idea_ids
        if rng.random() < 0.25
    ]
    Idea.collections.through.objects.bulk_create(collection_links, batch_size=5000)

    specs = [
        ExperimentSpec(idea_id=idea_id, title=f"smoke check {k}", kind="smoke", params={"steps": 1}, seed=k)
        for idea_id in rng.sample(idea_ids, max(1, n_ideas // 50))
        for k in range(rng.randint(1, 2))
    ]
    ExperimentSpec.objects.bulk_create(specs, batch_size=2000)
    runs = [
        ExperimentRun(
            spec=spec,
            kind=spec.kind,
            params=spec.params,
            seed=spec.seed,
            spec_hash=hashlib.sha256(f"{spec.pk}-{k}".encode()).hexdigest(),
            status=status,
            verdict=rng.choice(("supports", "refutes", "inconclusive")) if status == "succeeded" else "",
            progress=1.0,
            finished_at=now,
        )
        for spec in specs
        for k in range(rng.randint(1, 3))
        for status in [rng.choice(("succeeded", "succeeded", "failed"))]
    ]
    ExperimentRun.objects.bulk_create(runs, batch_size=2000)

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # planner statistics as a long-running catalogue would have them
    return SeedSummary(
        ideas=n_ideas,
        users=n_users,
        votes=votes,
        tag_links=len(tag_links),
        collection_links=len(collection_links),
        specs=len(specs),
        runs=len(runs),
        rare_hits=RARE_COUNT,
        common_hits=common_hits,
    )


def summary_of_database() -> SeedSummary:
    """The counts of an already seeded database (when the seed is reused)."""
    from django.contrib.auth import get_user_model

    from experiments.models import ExperimentRun, ExperimentSpec
    from ideas.models import Idea, Vote

    ideas = Idea.objects.all()
    return SeedSummary(
        ideas=ideas.count(),
        users=get_user_model().objects.count(),
        votes=Vote.objects.count(),
        tag_links=Idea.tags.through.objects.count(),
        collection_links=Idea.collections.through.objects.count(),
        specs=ExperimentSpec.objects.count(),
        runs=ExperimentRun.objects.count(),
        rare_hits=ideas.filter(body__contains=RARE_WORD).count(),
        common_hits=ideas.filter(body__contains=COMMON_WORD).count(),
    )


def check_seed_matches_services() -> None:
    """Stop when `idea_create` fills a column of Idea that the seed leaves empty (see the module docstring)."""
    from django.db import transaction

    from ideas.models import Idea
    from ideas.services import idea_create

    seeded = Idea.objects.order_by("pk").first()
    empty = (None, "", [], {})
    with transaction.atomic():
        made = idea_create(author=None, title=seeded.title, kind=seeded.kind, body=seeded.body)
        rows = {row["id"]: row for row in Idea.objects.filter(pk__in=[seeded.pk, made.pk]).values()}
        transaction.set_rollback(True)
    missing = [
        name
        for name, value in rows[made.pk].items()
        if name not in SEEDED_OWN_WAY and value not in empty and rows[seeded.pk].get(name) in empty
    ]
    if missing:
        raise SystemExit(
            f"idea_create fills Idea.{', Idea.'.join(missing)} but the benchmark's seed leaves "
            f"{'it' if len(missing) == 1 else 'them'} empty: fill the same in benchmarks/api_data.py `seed` "
            "(or compute it in the database), then run again; it re-seeds by itself."
        )
