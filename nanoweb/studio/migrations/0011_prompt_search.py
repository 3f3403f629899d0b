from django.db import migrations

from nanoweb.lib import search


class Migration(migrations.Migration):
    """Full-text search over prompts: FTS5 on SQLite, a GIN index on PostgreSQL."""

    dependencies = [
        ('studio', '0010_generatedimage_display'),
    ]

    operations = [search.index_operation("studio_generation", "prompt")]
