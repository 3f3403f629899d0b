import nanoweb.studio.models
from django.db import migrations, models


class Migration(migrations.Migration):
    """A display rendition (WebP, at most 2048 px) beside each original; images stored
    earlier get theirs from `manage.py make_renditions`."""

    dependencies = [
        ('studio', '0009_generation_model_name_routing_waiting'),
    ]

    operations = [
        migrations.AddField(
            model_name='generatedimage',
            name='display',
            field=models.FileField(blank=True, max_length=200, upload_to=nanoweb.studio.models.display_path),
        ),
    ]
