"""The machine reader on a study's own images: stored with the study, shown beside the readers."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from readerstudy.accounts.models import Role
from readerstudy.analysis.machine_reader import compute_machine_reading, machine_scores, machine_summary
from readerstudy.studies.models import Study
from tests.conftest import make_user
from tests.test_analysis_pages import read_everything

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture
def analyst_client(db):
    client = Client()
    client.force_login(make_user("ana", role=Role.ANALYST))
    return client


def test_paired_study_is_read_and_scored_per_case(make_study):
    study = make_study("paired", cases=10)
    assert machine_summary(study) is None and machine_scores(study) is None
    compute_machine_reading(study, steps=20)
    summary = machine_summary(study)
    # The tiny test generator is untrained: its images are nothing like the smooth real ones.
    assert summary["auc"] > 0.9 and summary["current"]
    assert summary["n_real"] == 10 and summary["n_synthetic"] == 10
    assert summary["method"] in {"best_statistic", "statistics_classifier", "cnn_whole", "cnn_crops"}
    assert {m["method"] for m in summary["methods"]} == {"best_statistic", "statistics_classifier", "cnn_whole", "cnn_crops"}
    assert summary["paired_accuracy"] > 0.8 and summary["paired_n"] == 10
    scores = machine_scores(study)
    assert sorted(scores) == [c.index + 1 for c in study.cases.filter(is_practice=False)]
    assert all(0.0 <= s <= 1.0 for s in scores.values())


def test_mixed_study_scores_every_scored_case_and_skips_practice(make_study):
    study = make_study("mixed", cases=12, practice_case_count=2)
    assert study.cases.filter(is_practice=True).count() == 2
    compute_machine_reading(study, learned=False)
    scored = study.cases.filter(is_practice=False)
    summary = machine_summary(study)
    assert summary["n_real"] + summary["n_synthetic"] == scored.count()
    assert summary["paired_accuracy"] is None
    assert sorted(machine_scores(study)) == sorted(c.index + 1 for c in scored)


def test_a_reading_of_changed_images_is_stale_not_current(make_study, pool):
    study = make_study("paired", cases=8)
    compute_machine_reading(study, learned=False)
    case = study.cases.filter(is_practice=False).first()
    used = set(study.cases.values_list("real_image_id", flat=True))
    case.real_image = pool.real_images().exclude(pk__in=used).first()
    case.save()
    assert machine_scores(study) is None
    assert machine_summary(study)["current"] is False
    compute_machine_reading(study, learned=False)
    assert machine_summary(study)["current"] is True


def test_report_shows_the_machine_beside_the_readers(make_study, readers, analyst_client):
    study = make_study("paired", cases=8)
    read_everything(study, readers)
    html = analyst_client.get(f"/studies/{study.pk}/report/").content.decode()
    assert "Machine reader" in html and f"manage.py machine_read {study.pk}" in html
    compute_machine_reading(study, learned=False)
    summary = machine_summary(study)
    html = analyst_client.get(f"/studies/{study.pk}/report/").content.decode()
    assert "Human readers, pooled" in html
    assert f">{summary['auc']:.4f}<" in html  # rounded on the page, like the report's figures
    assert summary["driver_description"] in html
    assert "8 real + 8 synthetic" in html
    assert "Not computed yet" not in html


def test_machine_read_command(make_study, capsys):
    study = make_study("paired", cases=6)
    call_command("machine_read", study.name, "--statistics-only")
    assert "machine reader AUC" in capsys.readouterr().out
    assert machine_summary(study)["current"]
    with pytest.raises(CommandError, match="no study"):
        call_command("machine_read", "no-such-study")


def test_unprepared_study_is_refused_clearly(pool, checkpoint):
    study = Study.objects.create(name="pending", design="paired", pool=pool, case_count=4, seed=3)
    study.generators.set([checkpoint])
    study.build_cases()  # drawn, synthetic images not generated yet
    with pytest.raises(CommandError, match="still being generated"):
        call_command("machine_read", str(study.pk), "--statistics-only")
    assert machine_summary(study) is None
