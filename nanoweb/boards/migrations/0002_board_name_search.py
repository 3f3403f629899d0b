from django.db import migrations

from nanoweb.lib import search


class Migration(migrations.Migration):
    """Full-text search over board names (the same index as prompts)."""

    dependencies = [
        ('boards', '0001_initial'),
    ]

    operations = [search.index_operation("boards_board", "name")]
