"""Readers: single-use expiring invitation links, specialties, reader groups, password reset by e-mail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from readerstudy.accounts.models import Invitation, ReaderGroup, Role, Specialty
from readerstudy.analysis.tidy import SPECIALTIES
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator(client):
    make_user("coord", role="coordinator")
    client.login(username="coord", password="pw-coord")
    return client


def coordinated(study):
    """Give the study to the console's coordinator: invitations and groups enrol readers in one's own studies only."""
    study.coordinators.add(User.objects.get(username="coord"))
    return study


def invite(client, **fields) -> str:
    page = client.post(reverse("console:readers"), {"invite": "1", "days": 14, **fields}).content.decode()
    return re.search(r'id="invite-link">([^<]+)<', page).group(1)


def join(client, link, username="newreader", specialty="radiology_resident", years=3, **extra):
    data = {"username": username, "password1": "a-long-passphrase-42", "password2": "a-long-passphrase-42",
            "specialty": specialty, "years_experience": years, **extra}
    return client.post(link, data)


def test_every_specialty_is_known_to_the_analysis():
    assert set(Specialty.values) == set(SPECIALTIES)
    assert {"radiology_resident", "orthopaedic_resident", "radiographer"} <= set(Specialty.values)


def test_invitation_creates_a_reader_with_specialty_and_enrols_them(coordinator, client, make_study):
    study = coordinated(make_study("mixed"))
    group = ReaderGroup.objects.create(name="knee panel")
    link = invite(coordinator, email="new@example.org", study=study.pk, group=group.pk)
    assert len(mail.outbox) == 1 and link in mail.outbox[0].body and mail.outbox[0].to == ["new@example.org"]
    coordinator.logout()
    page = client.get(link).content.decode()
    assert "Join the reader study" in page and "new@example.org" in page
    response = join(client, link, email="new@example.org")
    assert response.status_code == 302 and response["Location"] == reverse("home")
    user = User.objects.get(username="newreader")
    assert (user.profile.role, user.profile.specialty, user.profile.years_experience) == (Role.READER, "radiology_resident", 3)
    assert user.email == "new@example.org" and group.members.filter(pk=user.pk).exists()
    assert study.assignments.filter(reader=user).exists() and study.assignments.get(reader=user).slots.count() == 10
    assert study.name in client.get(reverse("home")).content.decode()  # logged in, study listed
    invitation = Invitation.objects.get()
    assert invitation.used_by == user and invitation.state == "used"
    added = study.audit_log.get(action="reader added")  # in the study's audit log, as the inviting coordinator's doing
    assert (added.by.username, added.after) == ("coord", f"newreader (invitation #{invitation.pk})")
    # Single use: the same link is refused afterwards, for anyone.
    client.logout()
    again = client.get(link)
    assert again.status_code == 410 and "used already" in again.content.decode()
    assert join(client, link, username="second").status_code == 410 and not User.objects.filter(username="second").exists()


def test_expired_and_forged_links_are_refused(coordinator, client):
    link = invite(coordinator, days=1)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    coordinator.logout()
    response = client.get(link)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert join(client, link).status_code == 410 and not User.objects.filter(username="newreader").exists()
    forged = client.get(reverse("accept_invitation", args=["x" * 43]))
    assert forged.status_code == 410 and "not valid" in forged.content.decode()


def test_only_the_hash_of_the_token_is_stored(coordinator):
    link = invite(coordinator)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token not in str(list(Invitation.objects.values()))


def test_logged_in_user_binds_their_account(coordinator, client, make_study):
    study = coordinated(make_study("mixed"))
    link = invite(coordinator, study=study.pk)
    existing = make_user("oldhand", specialty="other", years=0)
    client.login(username="oldhand", password="pw-oldhand")
    response = client.post(link, {"specialty": "orthopaedic_resident", "years_experience": 2})
    assert response.status_code == 302
    existing.profile.refresh_from_db()
    assert (existing.profile.specialty, existing.profile.years_experience) == ("orthopaedic_resident", 2)
    assert study.assignments.filter(reader=existing).exists()
    assert User.objects.count() == 4  # coord, rad, ortho, oldhand: no new account


def test_bad_join_form_keeps_the_invitation_usable(coordinator, client):
    link = invite(coordinator)
    coordinator.logout()
    response = join(client, link, years=-1)
    assert response.status_code == 200 and "Ensure this value is greater than or equal to 0" in response.content.decode()
    assert Invitation.objects.get().state == "open" and not User.objects.filter(username="newreader").exists()


def test_groups_assign_many_readers_at_once(coordinator, make_study, readers):
    study = coordinated(make_study("mixed"))
    third = make_user("third", specialty="radiographer")
    coordinator.post(reverse("console:readers"), {"create_group": "1", "name": "panel", "members": [r.pk for r in readers] + [third.pk]})
    group = ReaderGroup.objects.get(name="panel")
    assert set(group.members.values_list("username", flat=True)) == {"rad", "ortho", "third"}
    before = {a.reader.username: list(a.slots.values_list("case_id", flat=True)) for a in study.assignments.all()}
    page = coordinator.post(reverse("console:readers"), {"assign_group": "1", "group": group.pk, "study": study.pk}).content.decode()
    assert "3 readers of panel assigned" in page
    assert study.assignments.count() == 3 and study.assignments.get(reader=third).slots.count() == 10
    after = {a.reader.username: list(a.slots.values_list("case_id", flat=True)) for a in study.assignments.exclude(reader=third)}
    assert after == before  # readers assigned already keep their order
    added = study.audit_log.filter(action="reader added")  # the one newly assigned, by the coordinator
    assert [(e.by.username, e.after) for e in added] == [("coord", "third (group panel)")]


def test_password_reset_by_email(client):
    user = make_user("forgetful")
    user.email = "forgetful@example.org"
    user.save()
    assert "Forgot your password?" in client.get(reverse("login")).content.decode()
    response = client.post(reverse("password_reset"), {"email": "forgetful@example.org"})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/password-reset/[^\s]+)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]  # Django swaps the token for a session one
    response = client.post(form_url, {"new_password1": "another-long-one-77", "new_password2": "another-long-one-77"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_complete")
    assert client.login(username="forgetful", password="another-long-one-77")


def test_readers_page_gives_every_field_its_own_id(coordinator, make_study):
    """The invitation and the group-assignment forms both ask for a study and a group: each label names its own field."""
    coordinated(make_study("mixed"))
    ReaderGroup.objects.create(name="panel")
    page = coordinator.get(reverse("console:readers")).content.decode()
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert 'for="assign_study"' in page and 'for="id_study"' in page


def test_readers_are_enrolled_only_in_studies_one_coordinates(coordinator, make_study, readers):
    """Another coordinator's study is neither offered nor accepted, by invitation or by group."""
    mine, theirs = coordinated(make_study("mixed", seed=1)), make_study("paired", seed=2)
    theirs.owner = make_user("other-coord", role="coordinator")
    theirs.save()
    page = coordinator.get(reverse("console:readers")).content.decode()
    assert f'<option value="{mine.pk}">' in page and f'<option value="{theirs.pk}">' not in page
    refused = coordinator.post(reverse("console:readers"), {"invite": "1", "days": 14, "study": theirs.pk}).content.decode()
    assert 'id="invite-link"' not in refused and "Select a valid choice" in refused and not Invitation.objects.exists()
    group = ReaderGroup.objects.create(name="panel")
    group.members.set([make_user("third")])
    refused = coordinator.post(reverse("console:readers"), {"assign_group": "1", "group": group.pk, "study": theirs.pk}).content.decode()
    assert "Select a valid choice" in refused and not theirs.assignments.filter(reader__username="third").exists()
