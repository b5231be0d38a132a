"""The three roles (viewer, operator, administrator) as groups; see opsconsole/roles.py.

Permissions are normally created after `migrate` (post_migrate), so they are created here
first; the post_migrate receiver adds whatever later migrations bring.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from opsconsole.roles import ROLES, sync_roles


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_roles(
        apps.get_model("auth", "Group"),
        apps.get_model("auth", "Permission"),
        using=schema_editor.connection.alias,
    )


def remove_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("opsconsole", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("health", "0003_run_check_permission"),
        ("backups", "0003_restore_permission"),
        ("maintenance", "0002_maintenancelock_maintenancerun"),
        ("alerts", "0001_initial"),
        ("errors", "0004_digest_quarantine_and_quotas"),
        ("metrics", "0003_rollup_chart_index"),
        ("django_celery_beat", "__latest__"),
        ("django_celery_results", "__latest__"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
