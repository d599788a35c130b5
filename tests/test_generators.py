"""The site's synthetic sources: GAN checkpoints, bring-your-own ONNX models and the CT
renderer; several per study; and the privacy screen applied to what the site generates."""

from __future__ import annotations

import uuid
from collections import Counter

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from generator.privacy import PrivacyScreen, pixel_vectors
from generator.sampling import SampleRequest, Sampler, replacement_seed
from readerstudy.analysis.export import rows_for_study
from readerstudy.analysis.report import build_report
from readerstudy.archive.models import Image, Source
from readerstudy.studies.admin import StudyForm
from readerstudy.studies.generation import GenerationError, generate_pending, prepare
from readerstudy.studies.models import Answer, Generator, Study
from readerstudy.studies.rebuild import rebuild_differences
from readerstudy.accounts.models import Role
from tests.conftest import make_user, smooth_image
from tests.synthetic import write_onnx_generator, write_phantom_ct

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def new_study(pool, generators, **fields) -> Study:
    study = Study.objects.create(**{"name": "s", "design": "paired", "pool": pool, "case_count": 8, "seed": 5, **fields})
    study.generators.set(generators)
    return study


def answer_everything(study: Study) -> None:
    """Every reader answers every slot correctly (enough to export and report)."""
    for assignment in study.assignments.all():
        for slot in assignment.slots.all():
            slot.mark_served()
            slot.record(uuid.uuid4(), {study.question: slot.truth}, confidence=3, reading_ms=900, client={})


# --- kinds of source ------------------------------------------------------------------------------


def test_each_kind_is_registered_with_its_fingerprint_and_config(db, tiny_checkpoint, tmp_path):
    gan = Generator.objects.create(name="gan", path=str(tiny_checkpoint))
    assert gan.kind == "gan" and gan.resolution == 32 and len(gan.sha256) == 64
    onnx_file = write_onnx_generator(tmp_path / "own.onnx", conditional=True, size=32)
    own = Generator.objects.create(name="own", kind="onnx", path=str(onnx_file))
    assert own.config["architecture"] == "onnx" and own.resolution == 32 and own.num_classes == 3
    ct = Generator.objects.create(name="ct", kind="ct", path=str(write_phantom_ct(tmp_path / "ct.nii.gz")))
    assert ct.resolution is None and ct.config["volume_shape"] == [48, 40, 48]


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("gan", "model.pt", "safetensors"),
        ("onnx", "model.pt", "TorchScript"),
        ("ct", "volume.mha", "NIfTI"),
        ("gan", "missing.safetensors", "not found"),
    ],
)
def test_a_file_of_the_wrong_kind_is_a_clear_error(db, settings, tmp_path, kind, name, message):
    settings.CHECKPOINT_DIRS = [tmp_path]
    if name != "missing.safetensors":
        (tmp_path / name).write_bytes(b"\x80\x04not a model")
    with pytest.raises(ValidationError, match=message):
        Generator(name="bad", kind=kind, path=name).full_clean()


def test_a_changed_file_stops_generation(pool, tiny_checkpoint, tmp_path):
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(tiny_checkpoint.read_bytes())
    study = new_study(pool, [Generator.objects.create(name="copy", path=str(copy))], case_count=4)
    study.build_cases()
    with open(copy, "ab") as handle:
        handle.write(b" ")
    with pytest.raises(GenerationError, match="changed since it was registered"):
        generate_pending(study)
    copy.unlink()
    with pytest.raises(GenerationError, match="copy.safetensors"):
        generate_pending(study)


def test_onnx_generator_serves_a_study_reproducibly(pool, readers, tmp_path):
    own = Generator.objects.create(name="own", kind="onnx", path=str(write_onnx_generator(tmp_path / "own.onnx", True, size=32)))
    study = new_study(pool, [own], design="mixed", case_count=10)
    prepare(study)
    synthetic = study.cases.filter(synthetic_seed__isnull=False)
    assert synthetic.count() == 5 and all(0 <= case.synthetic_label < 3 for case in synthetic)
    image = synthetic.first().synthetic_image
    assert image.origin["architecture"] == "onnx" and image.origin["generator"] == "own"
    assert (image.width, image.height) == (32, 32)
    assert rebuild_differences(study) == []


def test_ct_renderer_is_a_synthetic_source_at_the_pool_size(pool, readers, tmp_path):
    ct = Generator.objects.create(name="phantom-ct", kind="ct", path=str(write_phantom_ct(tmp_path / "ct.nii.gz")))
    study = new_study(pool, [ct], case_count=4)
    prepare(study)
    for case in study.cases.all():
        origin = case.synthetic_image.origin
        assert origin["architecture"] == "ct-projection" and origin["seed"] == case.synthetic_seed
        assert set(origin["render"]) >= {"rotation_deg", "photons", "blur_px"}
        assert (case.synthetic_image.width, case.synthetic_image.bit_depth) == (32, 16)
    assert rebuild_differences(study) == []


# --- several sources in one study ------------------------------------------------------------------


def test_synthetic_cases_are_dealt_evenly_between_sources(pool, readers, checkpoint, tmp_path):
    ct = Generator.objects.create(name="phantom-ct", kind="ct", path=str(write_phantom_ct(tmp_path / "ct.nii.gz")))
    own = Generator.objects.create(name="own", kind="onnx", path=str(write_onnx_generator(tmp_path / "own.onnx", False, size=32)))
    study = new_study(pool, [checkpoint, ct, own], design="mixed", case_count=12, practice_case_count=3, synthetic_fraction=0.5)
    prepare(study)
    for reader in readers:
        study.assign(reader)
    scored = Counter(c.generator.name for c in study.cases.filter(is_practice=False, synthetic_seed__isnull=False))
    assert scored == {"tiny": 2, "phantom-ct": 2, "own": 2}
    assert study.cases.filter(synthetic_seed__isnull=True, generator__isnull=False).count() == 0
    for case in study.cases.exclude(synthetic_image=None).select_related("synthetic_image", "generator"):
        assert case.synthetic_image.origin["generator"] == case.generator.name
    assert rebuild_differences(study) == []

    answer_everything(study)
    rows = rows_for_study(study)
    assert {row.source for row in rows if row.truth == Source.SYNTHETIC} == {"tiny", "phantom-ct", "own"}
    assert {row.source for row in rows if row.truth == Source.REAL} == {""}
    (figures,) = build_report(rows, bootstrap=0)["studies"]
    assert sorted(figures["sources"]["names"]) == ["own", "phantom-ct", "tiny"]


def test_one_source_draws_as_before_several_were_possible(pool, checkpoint, tiny_checkpoint):
    """The second source changes who makes which case, never the cases, seeds or labels."""
    other = Generator.objects.create(name="other", path=str(tiny_checkpoint))
    one = new_study(pool, [checkpoint]).draw()
    two = new_study(pool, [checkpoint, other], name="two").draw()
    strip = [{k: v for k, v in case.items() if k != "generator_id"} for case in one]
    assert strip == [{k: v for k, v in case.items() if k != "generator_id"} for case in two]
    assert Counter(case["generator_id"] for case in two) == {checkpoint.pk: 4, other.pk: 4}


def test_generators_are_checked_against_the_study_and_frozen_once_drawn(pool, checkpoint, make_study, tmp_path):
    ct = Generator.objects.create(name="phantom-ct", kind="ct", path=str(write_phantom_ct(tmp_path / "ct.nii.gz")))
    data = {"name": "new", "design": "paired", "pool": pool.pk, "seed": 1, "case_count": 4, "synthetic_fraction": 0.5,
            "truncation": 1.0, "equivalence_margin": 0.1, "practice_case_count": 0, "blank_ms": 0, "break_every": 0,
            "repeat_count": 0, "repeat_min_gap": 0, "washout_days": 0}
    assert "generators" in StudyForm(data={**data, "generators": []}).errors
    valid = StudyForm(data={**data, "generators": [checkpoint.pk, ct.pk]})
    assert valid.is_valid(), valid.errors
    pool.presentation_size = 64
    pool.save()
    form = StudyForm(data={**data, "generators": [checkpoint.pk, ct.pk]})
    assert not form.is_valid() and "upscaled" in str(form.errors["generators"])  # the 32 px GAN; the CT renders any size
    pool.presentation_size = 32
    pool.save()
    labelled = StudyForm(data={**data, "label": 1, "generators": [checkpoint.pk, ct.pk]})
    assert not labelled.is_valid() and "no generator of the study is conditional" in str(labelled.errors)
    study = make_study("paired", cases=4)
    changed = StudyForm(instance=study, data={**data, "name": study.name, "seed": study.seed, "generators": [ct.pk]})
    assert not changed.is_valid() and "can no longer change" in str(changed.errors)


# --- the privacy screen on the site ----------------------------------------------------------------


@pytest.fixture
def memorising_screen(pool, checkpoint, tmp_path):
    """A screen whose 'training set' holds exactly what the generator makes for the first
    candidates of two of the study's cases (planted copies) plus unrelated images.

    Thresholds are set so that only near-copies are refused (the calibration itself is
    tested in test_generator_privacy.py)."""
    planned = new_study(pool, [checkpoint], name="planning").draw()
    planted = [case["synthetic_seed"] for case in planned[:2]]
    sampler = Sampler(checkpoint.resolved_path(), device="cpu")
    copies = np.stack([r.pixels for r in sampler.sample([SampleRequest(seed) for seed in planted])])
    others = np.stack([smooth_image(100 + i, 32) for i in range(30)])
    screen = PrivacyScreen.build(np.concatenate([copies, others]), others[:10], feature_steps=20)
    screen.pixel_threshold, screen.feature_threshold = 0.95, 1.01
    path = screen.save(tmp_path / "tiny.privacy.safetensors")
    Study.objects.filter(name="planning").delete()
    return path, planted


def test_refused_candidates_are_replaced_recorded_and_rebuilt(pool, readers, tiny_checkpoint, memorising_screen, client):
    path, planted = memorising_screen
    screened = Generator.objects.create(name="screened", path=str(tiny_checkpoint), privacy_screen=str(path))
    assert screened.privacy_sha256
    study = new_study(pool, [screened])
    prepare(study)
    refused = study.cases.filter(privacy_refusals__gt=0)
    assert sorted(refused.values_list("synthetic_seed", flat=True)) == sorted(planted)
    for case in refused:
        assert case.privacy_refusals == 1 and case.generation_seed == replacement_seed(case.synthetic_seed, 1)
        origin = case.synthetic_image.origin
        assert origin["seed"] == case.generation_seed and origin["privacy"]["passed"]
    assert not Image.objects.filter(generation_key__contains=f":{planted[0]}:").exists()  # refused images are never stored
    assert study.privacy_counts() == {"screened": {"cases": 8, "refused": 2}}
    assert "refused 2 as too similar" in study.privacy_summary()
    assert rebuild_differences(study) == []
    client.force_login(make_user("analyst", role=Role.ANALYST))
    page = client.get(f"/studies/{study.pk}/report/").content.decode()
    assert "refused 2 as too similar" in page and "screened" in page
    made = client.get(f"/studies/{study.pk}/provenance.json").json()
    assert made["privacy_screen"] == {"screened": {"cases": 8, "refused": 2}}
    assert made["generators"][0]["privacy_screen_sha256"] == screened.privacy_sha256
    for case in made["cases"]:
        synthetic = case["synthetic_image"]
        assert synthetic["seed"] == replacement_seed(synthetic["drawn_seed"], synthetic["privacy_refusals"])
        assert synthetic["provenance"]["seed"] == synthetic["seed"] and case["real_image"]["filename"]
    assert sorted(c["synthetic_image"]["drawn_seed"] for c in made["cases"] if c["synthetic_image"]["privacy_refusals"]) == sorted(planted)

    refused.update(privacy_refusals=0)  # as if the record had lost the refusal
    assert any("now refused" in line for line in rebuild_differences(study))


def test_a_generator_that_only_copies_is_stopped(pool, tiny_checkpoint, tmp_path):
    sampler = Sampler(tiny_checkpoint, device="cpu")
    outputs = np.stack([r.pixels for r in sampler.sample([SampleRequest(seed) for seed in range(40)])])
    screen = PrivacyScreen.build(outputs, outputs[:10], feature_steps=20)
    screen.pixel_threshold, screen.feature_threshold = 1e-6, 1.01  # refuses everything this generator makes
    assert (pixel_vectors(outputs) @ screen.train_pixels.float().T).amax(dim=1).min() > 0
    path = screen.save(tmp_path / "all.privacy.safetensors")
    copier = Generator.objects.create(name="copier", path=str(tiny_checkpoint), privacy_screen=str(path))
    study = new_study(pool, [copier], case_count=2)
    with pytest.raises(GenerationError, match="refused 21 candidates"):
        prepare(study)
    assert not study.cases.exclude(synthetic_image=None).exists() and not Answer.objects.exists()


def test_a_broken_privacy_screen_is_refused_at_registration(db, tiny_checkpoint, tmp_path):
    broken = tmp_path / "g.privacy.safetensors"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(ValidationError, match="cannot be read as a privacy screen"):
        Generator(name="g", path=str(tiny_checkpoint), privacy_screen=str(broken)).full_clean()
    with pytest.raises(ValidationError, match="not found"):
        Generator(name="g", path=str(tiny_checkpoint), privacy_screen="missing.privacy.safetensors").full_clean()


def test_a_ct_renderer_takes_no_privacy_screen(db, tmp_path):
    with pytest.raises(ValidationError, match="no training patients"):
        Generator(name="ct", kind="ct", path=str(write_phantom_ct(tmp_path / "ct.nii.gz")),
                  privacy_screen=str(tmp_path / "ct.nii.gz")).full_clean()


def test_screened_and_unscreened_images_are_cached_apart(pool, tiny_checkpoint, memorising_screen, checkpoint):
    path, planted = memorising_screen
    plain = new_study(pool, [checkpoint], name="plain")
    prepare(plain)
    screened = Generator.objects.create(name="screened", path=str(tiny_checkpoint), privacy_screen=str(path))
    study = new_study(pool, [screened], name="screened")
    prepare(study)
    assert not set(study.cases.values_list("synthetic_image", flat=True)) & set(plain.cases.values_list("synthetic_image", flat=True))


# --- studies made before several generators ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_studies_from_before_several_generators_keep_their_generator():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("studies", "0001_initial")])
    old = executor.loader.project_state([("studies", "0001_initial")]).apps
    pool = old.get_model("archive", "Pool").objects.create(name="old", presentation_size=32, bit_depth=16)
    checkpoint = old.get_model("studies", "GeneratorCheckpoint").objects.create(
        name="old-gan", path="old.safetensors", sha256="a" * 64, config={"resolution": 32}
    )
    study = old.get_model("studies", "Study").objects.create(name="old", design="mixed", pool=pool, generator=checkpoint)
    cases = old.get_model("studies", "Case").objects
    cases.create(study=study, index=0, synthetic_seed=11)
    cases.create(study=study, index=1)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    migrated = Study.objects.get(name="old")
    assert [g.name for g in migrated.sources()] == ["old-gan"]
    assert migrated.sources()[0].kind == "gan" and migrated.sources()[0].sha256 == "a" * 64
    assert [(c.index, c.generator and c.generator.name) for c in migrated.cases.order_by("index")] == [(0, "old-gan"), (1, None)]


def test_a_corrupt_or_oversized_ct_is_refused_at_registration(db, tmp_path, monkeypatch):
    import gzip

    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"\x00" * 200))
    with pytest.raises(ValidationError, match="cannot be read as a ct source"):
        Generator(name="bad", kind="ct", path=str(corrupt)).full_clean()
    from generator import physics

    monkeypatch.setattr(physics, "MAX_CT_VOXELS", 1000)  # the phantom has 48 x 40 x 48
    with pytest.raises(ValidationError, match="more than the 1,000 a CT may have"):
        Generator(name="big", kind="ct", path=str(write_phantom_ct(tmp_path / "ct.nii.gz"))).full_clean()
