from django.db import migrations

from nanoweb.lib import search


class Migration(migrations.Migration):
    """Full-text search over board names (the same index as prompts)."""

    dependencies = [
        ('boards', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: search.create_index(schema_editor, "boards_board", "name"),
            lambda apps, schema_editor: search.drop_index(schema_editor, "boards_board", "name"),
        ),
    ]
