from django.db import migrations, models


class Migration(migrations.Migration):
    """Pools that exist keep version 1 (rounded end levels, clipped synthetic input), so their
    studies still rebuild pixel for pixel; new pools get version 2 (encoding.py)."""

    dependencies = [("archive", "0002_issue12a_pool_grey_levels")]

    operations = [
        migrations.AddField(
            model_name="pool",
            name="presentation_version",
            field=models.PositiveSmallIntegerField(db_default=1, editable=False),
        ),
        migrations.AlterField(
            model_name="pool",
            name="presentation_version",
            field=models.PositiveSmallIntegerField(default=2, db_default=2, editable=False),
        ),
    ]
