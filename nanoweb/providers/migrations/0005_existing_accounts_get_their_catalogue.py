"""Existing accounts get their vendor's model catalogue as it is today, and existing jobs the
catalogue name of the model they were made with."""

from django.db import migrations
from django.db.models import F


def fill(apps, schema_editor):
    from nanoweb.providers.models import entry_fields
    from nanoweb.providers.registry import ADAPTERS

    Account = apps.get_model("providers", "ProviderAccount")
    Entry = apps.get_model("providers", "CatalogueEntry")
    Generation = apps.get_model("studio", "Generation")
    for account in Account.objects.all():
        for spec in ADAPTERS[account.kind].default_models:
            Entry.objects.get_or_create(
                account=account,
                model_id=spec.id,
                defaults={"prices": spec.prices, "enabled": spec.enabled, **entry_fields(spec)},
            )
    for entry in Entry.objects.all():
        Generation.objects.filter(account_id=entry.account_id, model=entry.model_id, model_name="").update(
            model_name=entry.name
        )
    Generation.objects.filter(model_name="").update(model_name=F("model"))


class Migration(migrations.Migration):
    dependencies = [("providers", "0004_catalogue_attempts_pausing")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
