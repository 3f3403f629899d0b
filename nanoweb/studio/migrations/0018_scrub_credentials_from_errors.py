import re

from django.db import migrations
from django.db.models import Q

# Error texts written before lib/http.py scrubbed them may quote a base URL's credentials
# ("cannot connect to user:secret@gateway:8499") or a query string: cut both, as it does now.
USER_INFO = re.compile(r"(?<=//)[^/?#@\s'\"]*@|(?<=connect to )[^/?#@\s'\"]*@")
QUERY = re.compile(r"\?[^\s'\"()=]*=[^\s'\"()]*")


def scrub(text):
    return QUERY.sub("", USER_INFO.sub("", text))


def scrub_errors(apps, schema_editor):
    Generation = apps.get_model("studio", "Generation")
    suspect = Q(error_message__contains="@") | Q(error_message__contains="?")
    suspect |= Q(error_detail__contains="@") | Q(error_detail__contains="?")
    for job in Generation.objects.filter(suspect).only("error_message", "error_detail").iterator():
        Generation.objects.filter(pk=job.pk).update(
            error_message=scrub(job.error_message), error_detail=scrub(job.error_detail)
        )


class Migration(migrations.Migration):
    dependencies = [("studio", "0017_leases_and_in_flight")]

    operations = [migrations.RunPython(scrub_errors, migrations.RunPython.noop)]
