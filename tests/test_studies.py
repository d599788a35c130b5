"""Drawing cases, laying out each reader's order and sides, on-demand synthesis, rebuilds."""

from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from readerstudy.archive.models import Image, Source
from readerstudy.studies.generation import generate_pending
from readerstudy.studies.models import Case, Study
from readerstudy.studies.rebuild import rebuild_differences


def new_study(pool, generator, **fields) -> Study:
    study = Study.objects.create(**{"design": "paired", "pool": pool, **fields})
    study.generators.set([generator])
    return study

pytestmark = pytest.mark.django_db


def test_paired_study_has_one_real_and_one_synthetic_per_case(make_study):
    study = make_study("paired", cases=10)
    cases = list(study.cases.select_related("real_image", "synthetic_image"))
    assert len(cases) == 10
    assert all(c.real_image.source == Source.REAL and c.synthetic_image.source == Source.SYNTHETIC for c in cases)
    assert len({c.real_image_id for c in cases}) == 10
    assert study.is_ready()


def test_synthetic_images_record_how_they_were_made(make_study, checkpoint):
    study = make_study("paired", cases=4)
    case = study.cases.first()
    origin = case.synthetic_image.origin
    assert origin["generator"] == "tiny"
    assert origin["seed"] == case.synthetic_seed
    assert origin["truncation"] == study.truncation
    assert checkpoint.sha256 in origin.values() or origin.get("checkpoint_sha256") == checkpoint.sha256


def test_paired_sides_are_balanced_exactly_per_reader(make_study):
    study = make_study("paired", cases=10)
    for assignment in study.assignments.all():
        sides = Counter(assignment.slots.values_list("synthetic_side", flat=True))
        assert sides == {"left": 5, "right": 5}


def test_each_reader_has_their_own_stored_order(make_study):
    study = make_study("paired", cases=10)
    orders = [list(a.slots.order_by("position").values_list("case__index", flat=True)) for a in study.assignments.all()]
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(10))
    assert orders[0] != orders[1]


def test_mixed_study_has_the_configured_ratio(make_study):
    study = make_study("mixed", cases=10, synthetic_fraction=0.3)
    cases = list(study.cases.all())
    assert sum(c.is_synthetic for c in cases) == 3
    assert all((c.real_image_id is None) == c.is_synthetic for c in cases)
    assert all(slot.synthetic_side == "" for slot in study.assignments.first().slots.all())


def test_same_seed_draws_the_same_study(make_study, pool, checkpoint):
    first = make_study("paired", cases=8, seed=77)
    second = new_study(pool, checkpoint, name="again", case_count=8, seed=77)
    assert second.draw() == first.draw()
    third = new_study(pool, checkpoint, name="other", case_count=8, seed=78)
    assert third.draw() != first.draw()


def test_rebuild_reproduces_cases_positions_and_pixels(make_study, capsys):
    study = make_study("paired", cases=8)
    assert rebuild_differences(study) == []
    call_command("rebuild_study", str(study.pk))
    assert "identical" in capsys.readouterr().out


def test_rebuild_detects_a_tampered_case(make_study):
    study = make_study("mixed", cases=6)
    case = study.cases.filter(synthetic_seed__isnull=False).first()
    Case.objects.filter(pk=case.pk).update(synthetic_seed=case.synthetic_seed + 1)
    assert any(f"case {case.index + 1}" in line for line in rebuild_differences(study, check_pixels=False))


def test_synthetic_images_are_cached_by_how_they_were_made(make_study):
    study = make_study("paired", cases=6)
    count = Image.objects.filter(source=Source.SYNTHETIC).count()
    Case.objects.filter(study=study).update(synthetic_image=None)
    assert generate_pending(study) == 6
    assert Image.objects.filter(source=Source.SYNTHETIC).count() == count


def test_readers_wait_until_every_synthetic_image_is_ready(pool, checkpoint):
    study = new_study(pool, checkpoint, name="s", case_count=4)
    study.build_cases()
    assert not study.is_ready()
    generate_pending(study)
    assert study.is_ready()


def test_too_many_cases_for_the_pool_is_a_clear_error(pool, checkpoint):
    study = new_study(pool, checkpoint, name="big", case_count=1000)
    with pytest.raises(ValidationError, match="needs 1000 real images"):
        study.draw()


def test_drawn_study_cannot_change_its_seed(make_study):
    study = make_study("paired", cases=4)
    study.seed += 1
    with pytest.raises(ValidationError, match="already drawn"):
        study.clean()


def test_generator_smaller_than_presentation_is_refused(pool, checkpoint):
    pool.presentation_size = 64
    pool.save()
    with pytest.raises(ValidationError, match="upscaled"):
        new_study(pool, checkpoint, name="x").draw()


def test_repeated_cases_come_later_for_intra_reader_agreement(make_study, readers):
    study = make_study("paired", cases=8, repeat_count=3)
    for assignment in study.assignments.all():
        indexes = list(assignment.slots.order_by("position").values_list("case__index", flat=True))
        assert len(indexes) == 11 and sorted(set(indexes)) == list(range(8))
        repeated = [i for i in set(indexes) if indexes.count(i) == 2]
        assert len(repeated) == 3
        sides = list(assignment.slots.order_by("position").values_list("synthetic_side", flat=True))
        first_sides = [sides[indexes.index(i)] for i in range(8)]
        assert first_sides.count("left") == 4

