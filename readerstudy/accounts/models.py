from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models


class Role(models.TextChoices):
    COORDINATOR = "coordinator", "Study coordinator"
    READER = "reader", "Reader"
    ANALYST = "analyst", "Analyst"


class Specialty(models.TextChoices):
    RADIOLOGIST = "radiologist", "Radiologist"
    ORTHOPAEDIC_SURGEON = "orthopaedic_surgeon", "Orthopaedic surgeon"
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
