from django.db import migrations

from nanoweb.lib import search


class Migration(migrations.Migration):
    """Full-text search over prompts: FTS5 on SQLite, a GIN index on PostgreSQL."""

    dependencies = [
        ('studio', '0009_generatedimage_display'),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: search.create_index(schema_editor, "studio_generation", "prompt"),
            lambda apps, schema_editor: search.drop_index(schema_editor, "studio_generation", "prompt"),
        ),
    ]
