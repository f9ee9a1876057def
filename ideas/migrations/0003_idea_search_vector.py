"""A stored, weighted search document per idea, kept current by PostgreSQL triggers, with a GIN index.

The document is title (weight A), body (B) and the idea's tag names (C), parsed with the `english`
configuration. Triggers keep it current whoever writes: the services, the admin, an import, or SQL
typed into psql:

- `ideas_idea_search_vector` (BEFORE INSERT OR UPDATE OF title, body, each row): recomputes the row's.
- `ideas_idea_tags_added` / `ideas_idea_tags_removed` (AFTER INSERT / DELETE on the idea-tag link table,
  once per statement, reading its transition table): recompute the ideas whose tags changed, once
  each, however many links one `idea.tags.set()` adds.
- `ideas_tag_renamed` (AFTER UPDATE OF name on a tag, when the name changed): recompute its ideas.

Deleting a tag deletes its links first (Django's collector), so the link trigger covers it.
On SQLite none of this is installed: the column stays NULL and search falls back to word matching.
"""

import django.contrib.postgres.search
from django.db import migrations

DOCUMENT_FUNCTION = """
CREATE FUNCTION ideas_idea_document(idea_title text, idea_body text, target_idea bigint)
RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT setweight(to_tsvector('english', coalesce(idea_title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(idea_body, '')), 'B')
        || setweight(to_tsvector('english', coalesce(
               (SELECT string_agg(tag.name, ' ' ORDER BY tag.name)
                  FROM ideas_idea_tags AS link JOIN ideas_tag AS tag ON tag.id = link.tag_id
                 WHERE link.idea_id = target_idea), '')), 'C')
$$;
"""

INSTALL = [
    DOCUMENT_FUNCTION,
    """
    CREATE FUNCTION ideas_idea_search_vector_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := ideas_idea_document(NEW.title, NEW.body, NEW.id);
        RETURN NEW;
    END $$;
    """,
    """
    CREATE TRIGGER ideas_idea_search_vector BEFORE INSERT OR UPDATE OF title, body ON ideas_idea
    FOR EACH ROW EXECUTE FUNCTION ideas_idea_search_vector_row();
    """,
    # `changed_links` is the statement's transition table: the link rows it added or removed.
    """
    CREATE FUNCTION ideas_idea_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE ideas_idea SET search_vector = ideas_idea_document(title, body, id)
         WHERE id IN (SELECT DISTINCT idea_id FROM changed_links);
        RETURN NULL;
    END $$;
    """,
    """
    CREATE TRIGGER ideas_idea_tags_added AFTER INSERT ON ideas_idea_tags
    REFERENCING NEW TABLE AS changed_links FOR EACH STATEMENT EXECUTE FUNCTION ideas_idea_tags_changed();
    """,
    """
    CREATE TRIGGER ideas_idea_tags_removed AFTER DELETE ON ideas_idea_tags
    REFERENCING OLD TABLE AS changed_links FOR EACH STATEMENT EXECUTE FUNCTION ideas_idea_tags_changed();
    """,
    """
    CREATE FUNCTION ideas_tag_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE ideas_idea SET search_vector = ideas_idea_document(title, body, id)
         WHERE id IN (SELECT idea_id FROM ideas_idea_tags WHERE tag_id = NEW.id);
        RETURN NULL;
    END $$;
    """,
    """
    CREATE TRIGGER ideas_tag_renamed AFTER UPDATE OF name ON ideas_tag
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION ideas_tag_renamed();
    """,
    # Keep the document in the row (compressed if it helps) rather than in the TOAST table: a common word
    # matches thousands of rows, and fetching each one's document from TOAST to test and rank it was most
    # of the search's time (a page for a word in half of 10,000 ideas: about 120 ms out of line, 25 inline).
    "ALTER TABLE ideas_idea ALTER COLUMN search_vector SET STORAGE MAIN;",
    # Backfill the rows that exist, then index them.
    "UPDATE ideas_idea SET search_vector = ideas_idea_document(title, body, id);",
    "CREATE INDEX ideas_idea_search_vector_gin ON ideas_idea USING gin (search_vector);",
]

UNINSTALL = [
    "DROP INDEX IF EXISTS ideas_idea_search_vector_gin;",
    "DROP TRIGGER IF EXISTS ideas_tag_renamed ON ideas_tag;",
    "DROP FUNCTION IF EXISTS ideas_tag_renamed();",
    "DROP TRIGGER IF EXISTS ideas_idea_tags_removed ON ideas_idea_tags;",
    "DROP TRIGGER IF EXISTS ideas_idea_tags_added ON ideas_idea_tags;",
    "DROP FUNCTION IF EXISTS ideas_idea_tags_changed();",
    "DROP TRIGGER IF EXISTS ideas_idea_search_vector ON ideas_idea;",
    "DROP FUNCTION IF EXISTS ideas_idea_search_vector_row();",
    "DROP FUNCTION IF EXISTS ideas_idea_document(text, text, bigint);",
]


def _run_on_postgresql(statements: list[str]):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("ideas", "0002_statuschange_run"),
    ]

    operations = [
        migrations.AddField(
            model_name="idea",
            name="search_vector",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(_run_on_postgresql(INSTALL), _run_on_postgresql(UNINSTALL)),
    ]
