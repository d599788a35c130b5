"""Generators of three kinds, several per study, one per synthetic case, and the privacy screen."""

import django.db.models.deletion
from django.db import migrations, models


def one_generator_to_many(apps, schema_editor):
    Study = apps.get_model("studies", "Study")
    Case = apps.get_model("studies", "Case")
    for study in Study.objects.all():
        study.generators.add(study.generator_id)
        Case.objects.filter(study=study, synthetic_seed__isnull=False).update(generator_id=study.generator_id)


def many_generators_to_one(apps, schema_editor):
    Study = apps.get_model("studies", "Study")
    for study in Study.objects.all():
        first = study.generators.order_by("name").first()
        if study.generators.count() != 1:
            raise RuntimeError(f"study {study.name} has {study.generators.count()} generators: cannot go back to one")
        Study.objects.filter(pk=study.pk).update(generator_id=first.pk)


class Migration(migrations.Migration):
    dependencies = [("studies", "0001_initial")]

    operations = [
        migrations.RenameModel("GeneratorCheckpoint", "Generator"),
        migrations.AddField(
            model_name="generator",
            name="kind",
            field=models.CharField(
                choices=[
                    ("gan", "Trained GAN, safetensors checkpoint"),
                    ("onnx", "Bring-your-own generator, ONNX"),
                    ("ct", "CT projection renderer, NIfTI file or DICOM series folder"),
                ],
                default="gan",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="generator",
            name="privacy_screen",
            field=models.CharField(
                blank=True, help_text="the generator's .privacy.safetensors file (relative paths as above)", max_length=500
            ),
        ),
        migrations.AddField(
            model_name="generator",
            name="privacy_sha256",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="generator",
            name="name",
            field=models.SlugField(help_text="names the source in exports and the report", max_length=100, unique=True),
        ),
        migrations.AlterField(
            model_name="generator",
            name="path",
            field=models.CharField(help_text="relative paths are looked up in CHECKPOINT_DIRS", max_length=500),
        ),
        migrations.AlterField(
            model_name="study",
            name="generator",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="studies.generator"),
        ),
        migrations.AddField(
            model_name="study",
            name="generators",
            field=models.ManyToManyField(
                help_text="synthetic sources; with several, synthetic cases are shared evenly between them.",
                related_name="studies",
                to="studies.generator",
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="generator",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="cases", to="studies.generator"
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="privacy_refusals",
            field=models.PositiveSmallIntegerField(
                default=0, help_text="candidates the privacy screen refused before the one stored (see generation_seed)"
            ),
        ),
        migrations.RunPython(one_generator_to_many, many_generators_to_one),
        migrations.RemoveField(model_name="study", name="generator"),
    ]
