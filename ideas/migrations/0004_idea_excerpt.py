"""The list's plain-text excerpt, stored with the body instead of rendered from markdown per row.

The services, the importer and the admin set it on every write; this fills it for the ideas that exist.
"""

from django.db import migrations, models

from ideas.rendering import plain_excerpt

BATCH = 500


def fill_excerpts(apps, schema_editor) -> None:
    ideas = apps.get_model("ideas", "Idea").objects.using(schema_editor.connection.alias)
    pks = list(ideas.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        batch = list(ideas.filter(pk__in=pks[start : start + BATCH]).only("pk", "body"))
        for idea in batch:
            idea.excerpt = plain_excerpt(idea.body or "")
        ideas.bulk_update(batch, ["excerpt"])


class Migration(migrations.Migration):
    dependencies = [
        ("ideas", "0003_idea_search_vector"),
    ]

    operations = [
        migrations.AddField(
            model_name="idea",
            name="excerpt",
            field=models.CharField(blank=True, default="", editable=False, max_length=240),
        ),
        migrations.RunPython(fill_excerpts, migrations.RunPython.noop),
    ]
