"""A study's lifecycle, who coordinates it, its frozen protocol and its audit trail.

draft → preparing → ready → open ⇄ closed → archived

- *preparing*: a background job draws the cases and makes the synthetic images; it ends in
  *ready*, or back in *draft* with the reason in the audit log and on the job.
- *open*: readers may read (``is_open`` stays the flag reading code filters on). Opening is
  refused until every case is ready. The first opening **freezes the protocol**: the fields
  in ``PROTOCOL_FIELDS``, the generators, the questions, and every case's images. The frozen
  protocol is stored as a document with its SHA-256 (``protocol_hash``, shown on the report);
  from then on changing any of it is refused by the model, whoever tries. Readers can still
  be added. A closed study may be opened again (the protocol stays frozen).
- *closed*: no new answers. *archived*: closed for good.

Every change of state or setting is appended to the study's audit log (``AuditEntry``):
who, what, before → after, when. Views say who is acting by setting ``study.audit_user``.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.utils import timezone

# Everything that decides what readers see and how the verdict is reached. Engineers adding a
# setting of that kind add its name here.
PROTOCOL_FIELDS = [
    "design", "pool_id", "seed", "case_count", "synthetic_fraction", "truncation", "label", "instructions",
    "equivalence_margin", "practice_case_count", "time_limit_seconds", "allow_back", "blank_ms", "break_every",
    "repeat_count",
    # Wash-out repeats, grade-then-reveal, blinding and display check (engineer GR): they change what readers see.
    "repeat_min_gap", "washout_days", "reveal_instructions", "allow_real_image_reuse", "display_check",
]
# What the draw of cases depends on: fixed from preparation on, before the whole protocol freezes.
DRAW_FIELDS = [
    "design", "pool_id", "seed", "case_count", "practice_case_count", "repeat_count", "synthetic_fraction",
    "truncation", "label",
    # The real images drawn (reuse across studies) and each reader's reading order (repeat gap, wash-out block).
    "allow_real_image_reuse", "repeat_min_gap", "washout_days",
]
# Changed only through the lifecycle methods, which log the change themselves.
NOT_AUDITED_AS_SETTINGS = {"state", "is_open", "protocol", "protocol_hash", "frozen_at"}


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    PREPARING = "preparing", "Preparing"
    READY = "ready", "Ready to open"
    OPEN = "open", "Open for reading"
    CLOSED = "closed", "Closed"
    ARCHIVED = "archived", "Archived"


FROZEN_STATES = (State.OPEN, State.CLOSED, State.ARCHIVED)


class StudyQuerySet(models.QuerySet):
    def coordinated_by(self, user) -> StudyQuerySet:
        """The studies ``user`` may see and edit in the console: owned or given; superusers see all."""
        from readerstudy.accounts.models import profile_of

        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        if not profile_of(user).is_coordinator:
            return self.none()
        return self.filter(models.Q(owner=user) | models.Q(coordinators=user)).distinct()


class StudyLifecycle(models.Model):
    """The lifecycle half of Study (fields and behaviour); Study inherits it."""

    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_studies",
        help_text="the coordinator who created the study",
    )
    coordinators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="coordinated_studies",
        help_text="other coordinators who may see and edit this study",
    )
    protocol = models.JSONField(default=dict, blank=True, editable=False, help_text="the protocol as frozen when first opened")
    protocol_hash = models.CharField(max_length=64, blank=True, editable=False)
    frozen_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = StudyQuerySet.as_manager()

    class Meta:
        abstract = True

    # Who

    def is_coordinated_by(self, user) -> bool:
        from readerstudy.accounts.models import profile_of

        if not user.is_authenticated:
            return False
        if user.is_superuser:
            return True
        if not profile_of(user).is_coordinator:
            return False
        return self.owner_id == user.pk or (self.pk is not None and self.coordinators.filter(pk=user.pk).exists())

    # Freezing

    @property
    def is_frozen(self) -> bool:
        return self.state in FROZEN_STATES

    def protocol_document(self) -> dict:
        """What the protocol hash covers: settings, sources, questions, and every case's images."""
        cases = self.cases.select_related("real_image", "synthetic_image", "generator").order_by("index")
        return {
            "settings": {name.removesuffix("_id"): getattr(self, name) for name in PROTOCOL_FIELDS},
            "pool": {"name": self.pool.name, "presentation_size": self.pool.presentation_size, "bit_depth": self.pool.bit_depth},
            "sources": [
                {"name": g.name, "kind": g.kind, "sha256": g.sha256, "privacy_sha256": g.privacy_sha256} for g in self.sources()
            ],
            "questions": [
                {"key": q.key, "label": q.label, "kind": q.kind, "choices": q.choices, "required": q.required,
                 "truth_from_label": q.truth_from_label, "order": q.order}
                for q in self.questions.all()
            ],
            "cases": [
                {
                    "index": c.index, "is_practice": c.is_practice,
                    "real_image": _image_hashes(c.real_image), "synthetic_image": _image_hashes(c.synthetic_image),
                    "generator": c.generator.name if c.generator else None, "synthetic_seed": c.synthetic_seed,
                    "synthetic_label": c.synthetic_label, "privacy_refusals": c.privacy_refusals,
                }
                for c in cases
            ],
        }

    def compute_protocol_hash(self) -> str:
        return _sha256_of(self.protocol_document())

    def protocol_intact(self) -> bool | None:
        """Whether the study still matches the hash stored when it was frozen (None: never frozen)."""
        return None if not self.protocol_hash else self.compute_protocol_hash() == self.protocol_hash

    def _stored(self):
        if self._state.adding or self.pk is None:
            return None
        return type(self).objects.filter(pk=self.pk).first()

    def frozen_changes(self, stored) -> list[str]:
        """Fields that differ from the stored study although its state fixes them."""
        if stored is None or (stored.state == State.DRAFT and not stored.cases.exists()):
            return []  # a draft whose cases are not drawn (or whose preparation failed before drawing)
        fixed = PROTOCOL_FIELDS if stored.is_frozen else DRAW_FIELDS
        return [name.removesuffix("_id") for name in fixed if getattr(stored, name) != getattr(self, name)]

    def refuse_frozen_changes(self, stored=None) -> None:
        stored = stored if stored is not None else self._stored()
        changed = self.frozen_changes(stored)
        if changed and stored.is_frozen:
            raise ValidationError(
                f"the protocol was frozen when the study was opened: {', '.join(changed)} can no longer change "
                "(clone the study to run a changed protocol)"
            )
        if changed:
            raise ValidationError(f"cases are already drawn: {', '.join(changed)} can no longer change (clone the study instead)")

    def save(self, *args, **kwargs):
        stored = self._stored()
        self.refuse_frozen_changes(stored)
        if self.state == State.OPEN:
            self.is_open = True
        elif self.state != State.DRAFT and self.state != State.READY:
            self.is_open = False
        # Draft and ready studies keep is_open as code sets it (older scripts and tests open studies directly).
        with transaction.atomic():
            super().save(*args, **kwargs)
            by = getattr(self, "audit_user", None)
            if stored is None:
                self.log(by, "created", after=self.name)
            else:
                self._log_setting_changes(stored, by, kwargs.get("update_fields"))

    def _log_setting_changes(self, stored, by, update_fields) -> None:
        from readerstudy.studies.records import AuditEntry

        for field in self._meta.concrete_fields:
            if field.name in NOT_AUDITED_AS_SETTINGS or (update_fields and field.name not in update_fields):
                continue
            before, after = getattr(stored, field.attname), getattr(self, field.attname)
            if before != after:
                AuditEntry.objects.create(
                    study=self, by=_user(by), action="changed", field=field.name,
                    before=_shown(stored, field), after=_shown(self, field),
                )

    def log(self, by, action: str, *, field: str = "", before: str = "", after: str = "") -> None:
        from readerstudy.studies.records import AuditEntry

        AuditEntry.objects.create(study=self, by=_user(by), action=action, field=field, before=before, after=after)

    # Transitions

    def _move(self, allowed: tuple[str, ...], to: str, by, note: str = "") -> None:
        current = type(self).objects.select_for_update().values_list("state", flat=True).get(pk=self.pk)
        if current not in allowed:
            raise ValidationError(
                f"the study is {State(current).label.lower()}: it can become {State(to).label.lower()} only when "
                f"{' or '.join(State(s).label.lower() for s in allowed)}"
            )
        self.state = to
        fields = ["state", "is_open"]
        if to == State.OPEN and not self.protocol_hash:
            self.protocol = self.protocol_document()
            self.protocol_hash = _sha256_of(self.protocol)
            self.frozen_at = timezone.now()
            fields += ["protocol", "protocol_hash", "frozen_at"]
        self.save(update_fields=fields)
        self.log(by, "state changed", before=State(current).label, after=State(to).label + (f": {note}" if note else ""))

    @transaction.atomic
    def start_preparing(self, by) -> None:
        """Draft → preparing; the caller enqueues the ``prepare_study`` job."""
        if problems := self.source_problems(self.sources()):
            raise ValidationError(problems)
        needed, available = self.real_images_needed(), self.pool.real_images().count()
        if needed > available:
            raise ValidationError(f"the study needs {needed} real images but pool {self.pool} has {available}")
        self._move((State.DRAFT,), State.PREPARING, by)

    @transaction.atomic
    def finish_preparing(self, by) -> None:
        self._move((State.PREPARING,), State.READY, by)

    @transaction.atomic
    def fail_preparing(self, by, reason: str) -> None:
        self._move((State.PREPARING,), State.DRAFT, by, note=f"preparation failed: {reason}")

    @transaction.atomic
    def open(self, by) -> None:
        """Ready (or closed) → open, refused until every case is ready; freezes the protocol the first time."""
        if not self.is_ready():
            pending = self.synthetic_pending().count()
            raise ValidationError(
                "the study has no cases yet: prepare it first" if not self.cases.exists()
                else f"{pending} synthetic image{'s are' if pending != 1 else ' is'} not made yet: wait for the preparation to finish"
            )
        self._move((State.READY, State.CLOSED), State.OPEN, by)
        for assignment in self.assignments.select_related("reader"):
            self.assign(assignment.reader)

    @transaction.atomic
    def close(self, by) -> None:
        self._move((State.OPEN,), State.CLOSED, by)

    @transaction.atomic
    def archive(self, by) -> None:
        self._move((State.CLOSED,), State.ARCHIVED, by)

    # Readers and size

    def add_reader(self, reader, by=None):
        """Assign a reader in any state but archived; their order and sides are laid out once cases exist."""
        from readerstudy.studies.models import Assignment

        if self.state == State.ARCHIVED:
            raise ValidationError("the study is archived: no readers can be added")
        assignment, created = Assignment.objects.get_or_create(
            study=self, reader=reader, defaults={"seed": self.reader_seed(reader)}
        )
        if self.cases.exists() and not assignment.slots.exists():
            assignment.lay_out()
        if created:
            self.log(by, "reader added", after=reader.username)
        return assignment

    def remove_reader(self, reader, by=None) -> None:
        """Only a reader who has not answered can be removed; exclude the others with a reason."""
        assignment = self.assignments.filter(reader=reader).first()
        if assignment is None:
            return
        if assignment.slots.filter(answers__isnull=False).exists():
            raise ValidationError(f"{reader.username} has answered: exclude them with a reason instead of removing them")
        assignment.delete()
        self.log(by, "reader removed", before=reader.username)

    def has_answers(self) -> bool:
        from readerstudy.studies.models import Answer

        return Answer.objects.filter(slot__assignment__study=self).exists()

    @transaction.atomic
    def clone(self, name: str, *, by=None, include_readers: bool = True, keep_seed: bool = False):
        """A new draft with this study's design, settings, sources and questions (and readers if asked).

        A new seed by default: the copy draws its own cases, so its readers see new images.
        """
        from readerstudy.studies.models import Question, new_seed

        copy = type(self)(name=name, owner=by if _user(by) else self.owner, design=self.design, pool=self.pool)
        for field in PROTOCOL_FIELDS:
            setattr(copy, field, getattr(self, field))
        copy.name, copy.seed = name, self.seed if keep_seed else new_seed()
        copy.audit_user = by
        copy.save()
        copy.log(by, "cloned", before=self.name, after=f"seed {'kept' if keep_seed else 'new'}: {copy.seed}")
        copy.generators.set(self.sources())
        copy.coordinators.set(self.coordinators.all())
        if self.owner_id and self.owner_id != copy.owner_id:
            copy.coordinators.add(self.owner_id)
        for question in self.questions.all():
            Question.objects.create(
                study=copy, key=question.key, label=question.label, kind=question.kind, choices=question.choices,
                required=question.required, truth_from_label=question.truth_from_label, order=question.order,
            )
        if include_readers:
            for assignment in self.assignments.select_related("reader").order_by("reader__username"):
                copy.add_reader(assignment.reader, by)
        return copy

    def real_images_needed(self) -> int:
        """Real images the draw takes from the pool (as ``draw`` counts them).

        Paired: one per case. Mixed and grade-then-reveal: the cases that are not synthetic (a
        grade-then-reveal study shows each image twice, graded then judged, but draws it once).
        """
        blocks = (self.case_count, self.practice_case_count)
        if self.design == "paired":
            return sum(blocks)
        return sum(count - round(count * self.synthetic_fraction) for count in blocks)

    def readings_per_reader(self) -> int:
        """Cases each reader reads: practice and repeats included; grade-then-reveal reads every case twice."""
        if self.design == "grade_reveal":  # every case graded, then judged
            return 2 * self.case_count
        return self.case_count + self.practice_case_count + self.repeat_count

    def images_per_reader(self) -> int:
        return self.readings_per_reader() * (2 if self.design == "paired" else 1)


def _image_hashes(image) -> dict | None:
    return None if image is None else {"pixel_sha256": image.pixel_sha256, "content_sha256": image.content_sha256}


def _sha256_of(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _user(by):
    return by if by is not None and getattr(by, "is_authenticated", False) else None


def _shown(study, field) -> str:
    value = getattr(study, field.name)
    return "" if value is None else str(value)


@receiver(m2m_changed)
def refuse_frozen_sources(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Generators of a frozen study cannot change, from either side of the relation."""
    from readerstudy.studies.models import Study

    if sender is not Study.generators.through or action not in ("pre_add", "pre_remove", "pre_clear"):
        return
    if not reverse:
        frozen = Study.objects.filter(pk=instance.pk, state__in=FROZEN_STATES).exists()
    else:
        studies = Study.objects.filter(state__in=FROZEN_STATES)
        frozen = studies.filter(pk__in=pk_set).exists() if pk_set else studies.filter(generators=instance).exists()
    if frozen:
        raise ValidationError("the protocol was frozen when the study was opened: its synthetic sources can no longer change")


@receiver(m2m_changed)
def log_source_changes(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    from readerstudy.studies.models import Generator, Study

    if sender is not Study.generators.through or reverse or action not in ("post_add", "post_remove") or not pk_set:
        return
    names = ", ".join(Generator.objects.filter(pk__in=pk_set).order_by("name").values_list("name", flat=True))
    kind = "source added" if action == "post_add" else "source removed"
    instance.log(getattr(instance, "audit_user", None), kind, field="generators", **({"after": names} if action == "post_add" else {"before": names}))
