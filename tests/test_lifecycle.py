"""A study's lifecycle: opening refused until ready, the frozen protocol, the audit log, exclusions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from readerstudy.jobs.engine import enqueue
from readerstudy.studies.lifecycle import State
from readerstudy.studies.models import AuditEntry, Exclusion, Question, Study
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator(db):
    return make_user("coord", role="coordinator")


@pytest.fixture
def draft(pool, checkpoint, readers, coordinator):
    study = Study(name="Pelvis", design="mixed", pool=pool, case_count=6, seed=5, owner=coordinator)
    study.audit_user = coordinator
    study.save()
    study.generators.set([checkpoint])
    for reader in readers:
        study.add_reader(reader, coordinator)
    return study


def prepared(study: Study, by) -> Study:
    study.start_preparing(by)
    enqueue("prepare_study", study=study, user=by)
    study.refresh_from_db()
    return study


def test_opening_is_refused_until_every_case_is_ready(draft, coordinator):
    with pytest.raises(ValidationError, match="no cases yet: prepare it first"):
        draft.open(coordinator)
    draft.build_cases()
    with pytest.raises(ValidationError, match="3 synthetic images are not made yet"):
        Study.objects.filter(pk=draft.pk).update(state=State.READY)
        Study.objects.get(pk=draft.pk).open(coordinator)
    assert not Study.objects.get(pk=draft.pk).is_open


def test_preparation_job_moves_draft_to_ready_and_open_freezes(draft, coordinator, readers):
    study = prepared(draft, coordinator)
    assert study.state == State.READY and study.is_ready()
    job = study.jobs.get()
    assert (job.status, job.done, job.total) == ("succeeded", 3, 3)
    assert all(a.slots.count() == 6 for a in study.assignments.all())
    study.open(coordinator)
    study.refresh_from_db()
    assert study.is_open and study.is_frozen and len(study.protocol_hash) == 64
    assert study.protocol_intact()
    assert len(study.protocol["cases"]) == 6
    assert all(c["real_image"] or c["synthetic_image"] for c in study.protocol["cases"])
    states = [e.after for e in study.audit_log.filter(action="state changed").order_by("at", "pk")]
    assert states == ["Preparing", "Ready to open", "Open for reading"]


def test_failed_preparation_goes_back_to_draft_with_the_reason(draft, coordinator, checkpoint, tiny_checkpoint, tmp_path):
    moved = tmp_path / "moved.safetensors"
    tiny_checkpoint.rename(moved)
    try:
        study = prepared(draft, coordinator)
    finally:
        moved.rename(tiny_checkpoint)
    assert study.state == State.DRAFT
    job = study.jobs.get()
    assert job.status == "failed" and "does not exist" in job.message
    assert "preparation failed" in study.audit_log.filter(action="state changed").first().after


def test_frozen_protocol_is_refused_at_the_model_level(draft, coordinator, checkpoint):
    study = prepared(draft, coordinator)
    study.open(coordinator)
    study = Study.objects.get(pk=study.pk)
    study.equivalence_margin = 0.45
    with pytest.raises(ValidationError, match="equivalence_margin can no longer change"):
        study.save()
    with pytest.raises(ValidationError, match="equivalence_margin"):
        study.full_clean()
    assert Study.objects.get(pk=study.pk).equivalence_margin == 0.10
    with pytest.raises(ValidationError, match="questions can no longer change"):
        Question.objects.create(study=study, key="kl", label="KL", choices="0,1,2")
    # The related managers change the relation in a transaction without a savepoint: give them one.
    with pytest.raises(ValidationError, match="synthetic sources"), transaction.atomic():
        study.generators.clear()
    with pytest.raises(ValidationError, match="synthetic sources"), transaction.atomic():
        checkpoint.studies.remove(study)
    assert study.sources() == [checkpoint]
    # Not part of the protocol: the name may change, and readers may still be added.
    study = Study.objects.get(pk=study.pk)
    study.name = "Pelvis (renamed)"
    study.audit_user = coordinator
    study.save()
    latecomer = make_user("late")
    assert study.add_reader(latecomer, coordinator).slots.count() == 6
    changed = study.audit_log.get(action="changed")
    assert (changed.field, changed.before, changed.after, changed.by) == ("name", "Pelvis", "Pelvis (renamed)", coordinator)
    assert study.audit_log.filter(action="reader added", after="late").exists()
    assert study.protocol_intact()


def test_question_of_a_frozen_study_cannot_be_deleted(draft, coordinator):
    question = Question.objects.create(study=draft, key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    study = prepared(draft, coordinator)
    study.open(coordinator)
    with pytest.raises(ValidationError, match="frozen"):
        Question.objects.get(pk=question.pk).delete()
    assert study.protocol["questions"][0]["key"] == "kl_grade"


def test_close_reopen_archive_and_the_audit_log_is_append_only(draft, coordinator):
    study = prepared(draft, coordinator)
    study.open(coordinator)
    study.close(coordinator)
    assert not Study.objects.get(pk=study.pk).is_open
    study.open(coordinator)
    study.close(coordinator)
    study.archive(coordinator)
    with pytest.raises(ValidationError):
        study.open(coordinator)
    entry = study.audit_log.first()
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        study.audit_log.all().delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.update(after="x")


def test_setting_changes_are_logged_with_before_and_after(draft, coordinator):
    study = Study.objects.get(pk=draft.pk)
    study.audit_user = coordinator
    study.equivalence_margin = 0.2
    study.save()
    entry = study.audit_log.get(action="changed")
    assert (entry.field, entry.before, entry.after) == ("equivalence_margin", "0.1", "0.2")


def test_exclusion_needs_a_reason_and_keeps_everything(make_study, readers):
    study = make_study("paired", cases=2)
    assignment = study.assignments.get(reader=readers[0])
    with pytest.raises(ValidationError, match="reason"):
        Exclusion.objects.create(study=study, assignment=assignment, reason="  ")
    other = study.assignments.get(reader=readers[1]).slots.first()
    with pytest.raises(ValidationError, match="another reader"):
        Exclusion.objects.create(study=study, assignment=assignment, slot=other, reason="wrong")
    exclusion = Exclusion.objects.create(study=study, assignment=assignment, reason="read on a phone")
    with pytest.raises(TypeError):
        exclusion.delete()
    assert assignment.slots.count() == 2 and study.exclusions.get().reason == "read on a phone"


def test_permissions_per_study(draft, coordinator):
    other = make_user("other", role="coordinator")
    reader = make_user("plain")
    assert draft.is_coordinated_by(coordinator)
    assert not draft.is_coordinated_by(other) and not draft.is_coordinated_by(reader)
    assert list(Study.objects.coordinated_by(other)) == []
    draft.coordinators.add(other)
    assert draft.is_coordinated_by(other)
    assert list(Study.objects.coordinated_by(other)) == [draft]
    reader.is_superuser = True
    assert draft.is_coordinated_by(reader)


def test_clone_copies_design_questions_and_readers_with_a_new_seed(draft, coordinator, checkpoint):
    Question.objects.create(study=draft, key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    copy = draft.clone("Pelvis 2", by=coordinator, include_readers=True)
    assert copy.state == State.DRAFT and copy.seed != draft.seed
    assert (copy.design, copy.pool, copy.case_count, copy.equivalence_margin) == ("mixed", draft.pool, 6, 0.1)
    assert copy.sources() == [checkpoint]
    assert list(copy.questions.values_list("key", flat=True)) == ["kl_grade"]
    assert set(copy.assignments.values_list("reader", flat=True)) == set(draft.assignments.values_list("reader", flat=True))
    same = draft.clone("Pelvis 3", by=coordinator, include_readers=False, keep_seed=True)
    assert same.seed == draft.seed and not same.assignments.exists()


def test_draw_settings_are_fixed_from_preparation_on(draft, coordinator):
    study = prepared(draft, coordinator)
    study.case_count = 4
    with pytest.raises(ValidationError, match="cases are already drawn: case_count"):
        study.save()
    study = Study.objects.get(pk=study.pk)
    study.equivalence_margin = 0.2  # not drawn on, and not frozen until the study opens
    study.save()
    assert Study.objects.get(pk=study.pk).equivalence_margin == 0.2
