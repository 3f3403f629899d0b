from django.db import migrations, models


def create_the_policy(apps, schema_editor):
    apps.get_model("sso", "SignInPolicy").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="SignInPolicy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "invited_only",
                    models.BooleanField(
                        default=False,
                        help_text="Off: a first sign-in from an allowed domain or group creates the member, with the default budget. On: only people staff have added (with the same email address) may sign in with single sign-on.",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "sign-in policy", "verbose_name_plural": "sign-in policy"},
        ),
        migrations.RunPython(create_the_policy, migrations.RunPython.noop),
    ]
