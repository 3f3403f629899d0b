"""A vendor's second channel for a model is another row of that model, not a model of its own:
crun's v2 channels take the name of the model they serve (where staff kept the shipped name)."""

from django.db import migrations

RENAMED = {
    ("google/nano-banana-2-v2", "Nano Banana 2 (v2 channel)"): "Nano Banana 2",
    ("google/nano-banana-v2", "Nano Banana (v2 channel)"): "Nano Banana",
}


def rename(apps, schema_editor):
    Entry = apps.get_model("providers", "CatalogueEntry")
    Generation = apps.get_model("studio", "Generation")
    for (model_id, old), new in RENAMED.items():
        Entry.objects.filter(account__kind="crun", model_id=model_id, name=old).update(name=new)
        Generation.objects.filter(account__kind="crun", model=model_id, model_name=old).update(model_name=new)


def restore(apps, schema_editor):
    Entry = apps.get_model("providers", "CatalogueEntry")
    for (model_id, old), new in RENAMED.items():
        Entry.objects.filter(account__kind="crun", model_id=model_id, name=new).update(name=old)


class Migration(migrations.Migration):
    dependencies = [("providers", "0007_leases_and_in_flight"), ("studio", "0016_renderer_gives_way_to_results")]
    operations = [migrations.RunPython(rename, restore)]
