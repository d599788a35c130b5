from __future__ import annotations

from django.conf import settings
import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone


class Role(models.TextChoices):
    COORDINATOR = "coordinator", "Study coordinator"
    READER = "reader", "Reader"
    ANALYST = "analyst", "Analyst"


class Specialty(models.TextChoices):
    RADIOLOGIST = "radiologist", "Radiologist"
    RADIOLOGY_RESIDENT = "radiology_resident", "Radiology resident"
    ORTHOPAEDIC_SURGEON = "orthopaedic_surgeon", "Orthopaedic surgeon"
    ORTHOPAEDIC_RESIDENT = "orthopaedic_resident", "Orthopaedic resident"
    RADIOGRAPHER = "radiographer", "Radiographer"
    OTHER = "other", "Other"


class Profile(models.Model):
    """What the site needs to know about a person beyond their login.

    A reader's specialty and experience are study covariates: they are copied
    into every exported answer row, so analyses can split by them.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.READER)
    specialty = models.CharField(max_length=30, choices=Specialty.choices, default=Specialty.OTHER)
    years_experience = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user.username} ({self.get_role_display()})"

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR or self.user.is_superuser

    @property
    def is_analyst(self) -> bool:
        return self.role in (Role.ANALYST, Role.COORDINATOR) or self.user.is_superuser

    @property
    def is_reader(self) -> bool:
        return self.role == Role.READER


def profile_of(user: User) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


# Invitations and reader groups (engineer 10b)

INVITATION_DAYS = 14


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationProblem(Exception):
    """Why an invitation link cannot be used, in words for the person who opened it."""


class Invitation(models.Model):
    """A single-use, expiring link that creates an account (or binds one) and enrols it.

    Only the token's hash is stored: the link is shown (and e-mailed) once, when it is made,
    and a copy of the database cannot be used to accept anyone's invitation.
    """

    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    email = models.EmailField(blank=True, help_text="where the link is sent; also the new account's address")
    study = models.ForeignKey("studies.Study", null=True, blank=True, on_delete=models.CASCADE, related_name="invitations")
    group = models.ForeignKey("ReaderGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="invitations")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"invitation #{self.pk} ({self.email or 'no e-mail'})"

    @classmethod
    def issue(cls, *, created_by: User | None, email: str = "", study=None, group=None, days: int = INVITATION_DAYS) -> tuple[Invitation, str]:
        """A new invitation and its token (the only time the token exists outside the link)."""
        token = secrets.token_urlsafe(32)
        invitation = cls.objects.create(
            token_sha256=token_digest(token), email=email, study=study, group=group, created_by=created_by,
            expires_at=timezone.now() + timedelta(days=days),
        )
        return invitation, token

    @classmethod
    def for_token(cls, token: str) -> Invitation:
        invitation = cls.objects.filter(token_sha256=token_digest(token)).first()
        if invitation is None:
            raise InvitationProblem("This invitation link is not valid. Check that you copied all of it.")
        invitation.check_usable()
        return invitation

    @property
    def state(self) -> str:
        if self.used_at:
            return "used"
        return "expired" if timezone.now() >= self.expires_at else "open"

    def check_usable(self) -> None:
        if self.used_at:
            raise InvitationProblem("This invitation has been used already. Log in with the account it created, or ask the study coordinator for a new link.")
        if timezone.now() >= self.expires_at:
            raise InvitationProblem(f"This invitation expired on {self.expires_at:%Y-%m-%d %H:%M} UTC. Ask the study coordinator for a new link.")

    @transaction.atomic
    def accept(self, user: User) -> None:
        """Use the invitation for ``user``: once only (a concurrent second use is refused), then enrol them."""
        claimed = Invitation.objects.filter(pk=self.pk, used_at__isnull=True, expires_at__gt=timezone.now()).update(
            used_at=timezone.now(), used_by=user
        )
        if not claimed:
            self.refresh_from_db()
            self.check_usable()
            raise InvitationProblem("This invitation cannot be used.")
        self.refresh_from_db()
        if self.group:
            self.group.members.add(user)
        if self.study:
            new = not self.study.assignments.filter(reader=user).exists()
            self.study.assign(user)
            if new:  # in the study's audit log, as a reader the coordinator adds in the builder is
                self.study.log(self.created_by, "reader added", after=f"{user.username} (invitation #{self.pk})")


class ReaderGroup(models.Model):
    """Readers a coordinator assigns to studies together (e.g. "knee panel: 3 surgeons, 2 radiologists")."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="reader_groups")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def assign_to(self, study, by=None) -> list:
        """Assign every member to ``study`` (members assigned already keep their order); returns the assignments.

        Each newly assigned member is written to the study's audit log, as ``by`` adding them.
        """
        assignments = []
        for member in self.members.order_by("username"):
            new = not study.assignments.filter(reader=member).exists()
            assignments.append(study.assign(member))
            if new:
                study.log(by, "reader added", after=f"{member.username} (group {self.name})")
        return assignments
