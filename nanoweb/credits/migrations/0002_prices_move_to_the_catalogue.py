"""Prices live on the catalogue rows now: each staff-set price moves to its row, then the
price table goes."""

from django.db import migrations

# The catalogue spells apiframe's 512px resolution as Gemini does.
RESOLUTIONS = {"512px": "512"}


def move_prices(apps, schema_editor):
    Price = apps.get_model("credits", "Price")
    Entry = apps.get_model("providers", "CatalogueEntry")
    for price in Price.objects.all():
        entry = Entry.objects.filter(account_id=price.account_id, model_id=price.model).first()
        if entry is None:
            continue  # a model id the account no longer offers
        resolution = RESOLUTIONS.get(price.resolution, price.resolution)
        if (resolution in entry.resolutions) or (not entry.resolutions and resolution == ""):
            entry.prices = {**entry.prices, resolution: str(price.amount)}
            entry.save(update_fields=["prices"])


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0001_initial"),
        ("providers", "0005_existing_accounts_get_their_catalogue"),
    ]

    operations = [
        migrations.RunPython(move_prices, migrations.RunPython.noop),
        migrations.DeleteModel(name="Price"),
    ]
