import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def favourites_become_five_stars(apps, schema_editor):
    Favorite, Rating = apps.get_model("studio", "Favorite"), apps.get_model("studio", "Rating")
    rows = Favorite.objects.values_list("user_id", "generation_id").iterator(chunk_size=5000)
    Rating.objects.bulk_create(
        (Rating(user_id=user_id, generation_id=generation_id, stars=5) for user_id, generation_id in rows),
        batch_size=5000,
    )


def five_stars_become_favourites(apps, schema_editor):
    Favorite, Rating = apps.get_model("studio", "Favorite"), apps.get_model("studio", "Rating")
    rows = Rating.objects.filter(stars=5).values_list("user_id", "generation_id").iterator(chunk_size=5000)
    Favorite.objects.bulk_create(
        (Favorite(user_id=user_id, generation_id=generation_id) for user_id, generation_id in rows), batch_size=5000
    )


class Migration(migrations.Migration):
    """1–5 stars per person replace the one-bit favourites; a favourite becomes five stars."""

    dependencies = [
        ('studio', '0011_prompt_search'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Rating',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stars', models.PositiveSmallIntegerField()),
                ('rated_at', models.DateTimeField(auto_now=True)),
                ('generation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='ratings', to='studio.generation')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='ratings', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.AddIndex(
            model_name='rating',
            index=models.Index(fields=['user', 'stars', 'generation'], name='rating_by_person_stars'),
        ),
        migrations.AddConstraint(
            model_name='rating',
            constraint=models.UniqueConstraint(fields=('user', 'generation'), name='one_rating_per_person'),
        ),
        migrations.AddConstraint(
            model_name='rating',
            constraint=models.CheckConstraint(condition=models.Q(('stars__gte', 1), ('stars__lte', 5)), name='one_to_five_stars'),
        ),
        migrations.RunPython(favourites_become_five_stars, five_stars_become_favourites),
        migrations.DeleteModel(
            name='Favorite',
        ),
    ]
