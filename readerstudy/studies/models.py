"""Studies, their cases (display sets) and each reader's assignment.

Everything random about a study is drawn from stored seeds, so a study can be
rebuilt exactly: which real images are cases, which cases are synthetic (mixed
design), each synthetic image's generator seed, each reader's order, and on
which side each reader sees the synthetic image (paired design).
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from readerstudy.archive.models import Image, Pool, Source
from readerstudy.studies.lifecycle import StudyLifecycle


def new_seed() -> int:
    return secrets.randbits(62)


class Generator(models.Model):
    """A synthetic source the site may draw images from, identified by its file's hash.

    Three kinds (generator/sources.py): a GAN we trained (safetensors checkpoint), a
    generator trained elsewhere (ONNX), or the physics renderer of a CT volume. A GAN
    trained on patients should carry its privacy screen (the ``.privacy.safetensors``
    file ``python -m generator privacy-screen`` writes): candidates too similar to a
    training image are then refused and replaced by the next seed of a fixed sequence.
    """

    class Kind(models.TextChoices):
        GAN = "gan", "Trained GAN, safetensors checkpoint"
        ONNX = "onnx", "Bring-your-own generator, ONNX"
        CT = "ct", "CT projection renderer, NIfTI file or DICOM series folder"

    name = models.SlugField(max_length=100, unique=True, help_text="names the source in exports and the report")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.GAN)
    path = models.CharField(max_length=500, help_text="relative paths are looked up in CHECKPOINT_DIRS")
    privacy_screen = models.CharField(
        max_length=500, blank=True, help_text="the generator's .privacy.safetensors file (relative paths as above)"
    )
    sha256 = models.CharField(max_length=64, editable=False)
    privacy_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    config = models.JSONField(default=dict, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def resolve(name: str) -> Path:
        path = Path(name)
        if path.is_absolute():
            return path
        for folder in settings.CHECKPOINT_DIRS:
            if (folder / path).exists():
                return folder / path
        raise FileNotFoundError(f"{name} not found in {', '.join(map(str, settings.CHECKPOINT_DIRS))}")

    def resolved_path(self) -> Path:
        return self.resolve(self.path)

    def resolved_privacy_screen(self) -> Path | None:
        return self.resolve(self.privacy_screen) if self.privacy_screen else None

    def clean(self) -> None:
        if not self._state.adding:
            return  # kind and files are fixed once registered (read-only in the admin)
        try:
            self.refresh_fingerprint()
        except (OSError, ValueError) as error:
            raise ValidationError(str(error)) from error

    def refresh_fingerprint(self) -> None:
        """Record the files' hashes and the config; sampling refuses files that changed since."""
        from generator import sources
        from generator.checkpoints import checkpoint_sha256

        path = self.resolved_path()
        self.sha256 = sources.fingerprint(self.kind, path)
        self.config = sources.describe(self.kind, path)
        screen = self.resolved_privacy_screen()
        if screen and self.kind == self.Kind.CT:
            raise ValueError("a CT renderer has no training patients to screen against")
        if screen:
            sources.check_privacy_screen(screen)
        self.privacy_sha256 = checkpoint_sha256(screen) if screen else ""

    @property
    def resolution(self) -> int | None:
        """The size it makes, None for a renderer that renders at any size."""
        resolution = self.config.get("resolution")
        return None if resolution is None else int(resolution)

    @property
    def num_classes(self) -> int:
        return int(self.config.get("num_classes", 0))

    def save(self, *args, **kwargs):
        if not self.sha256:
            self.refresh_fingerprint()
        super().save(*args, **kwargs)


class Design(models.TextChoices):
    PAIRED = "paired", "Paired: one real and one synthetic side by side"
    MIXED = "mixed", "Mixed: single images, real or synthetic"
    # Knee-style (engineer 10b): every image graded first, readers not told synthetic images are
    # present; then, only once grading is complete, told, and asked real or synthetic (+ confidence)
    # for the same images in a new order.
    GRADE_REVEAL = "grade_reveal", "Grade then reveal: grade every image, then told and asked real or synthetic"


# Words that would tell a grading reader that some images are not real (grade-then-reveal).
TELLING_WORDS = re.compile(r"synthe\w*|fake\w*|generat\w*|artificial\w*|\bGANs?\b|real or|deep ?learning|\bAI\b", re.IGNORECASE)


class Phase(models.TextChoices):
    """Which block of a reader's plan a slot belongs to (engineer 10b)."""

    NONE = "", "Reading"
    GRADE = "grade", "Grading (not told synthetic images are present)"
    REVEAL = "reveal", "Reveal: real or synthetic"
    WASHOUT = "washout", "Repeats after a wash-out"


class Study(StudyLifecycle):  # lifecycle, coordinators, frozen protocol: lifecycle.py
    name = models.CharField(max_length=200, unique=True)
    design = models.CharField(max_length=20, choices=Design.choices)
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="studies")
    generators = models.ManyToManyField(
        Generator, related_name="studies",
        help_text="synthetic sources; with several, synthetic cases are shared evenly between them.",
    )
    seed = models.BigIntegerField(default=new_seed, help_text="draws cases and synthetic seeds; keep it to rebuild the study")
    case_count = models.PositiveIntegerField(default=20)
    synthetic_fraction = models.FloatField(default=0.5, help_text="mixed design: share of cases that are synthetic")
    truncation = models.FloatField(default=1.0, help_text="generator truncation psi (1.0 = none)")
    label = models.IntegerField(null=True, blank=True, help_text="class label for a conditional generator; blank draws one per case")
    instructions = models.TextField(blank=True)
    equivalence_margin = models.FloatField(default=0.10, help_text="pre-specified margin for the equivalence test")
    # Reading workflow
    practice_case_count = models.PositiveIntegerField(
        default=0, help_text="practice cases read first, with feedback, excluded from analysis"
    )
    time_limit_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="per case; when it runs out the images are hidden and an answer is still required"
    )
    allow_back = models.BooleanField(default=False, help_text="readers may revisit and revise earlier scored answers")
    blank_ms = models.PositiveIntegerField(default=500, help_text="neutral screen between cases, in milliseconds")
    break_every = models.PositiveIntegerField(default=0, help_text="offer a break every N scored cases (0 = never)")
    repeat_count = models.PositiveIntegerField(
        default=0, help_text="scored cases each reader sees a second time, later on, for intra-reader agreement"
    )
    repeat_min_gap = models.PositiveIntegerField(
        default=0, help_text="at least this many other cases between a case's first reading and its repeat"
    )
    washout_days = models.PositiveIntegerField(
        default=0, help_text="repeats form a last block, opened this many days after the reader finished the other cases "
        "(0 = repeats are mixed in with the other cases)",
    )
    reveal_instructions = models.TextField(
        blank=True, help_text="grade-then-reveal: shown when the reveal block starts (the instructions above are for "
        "the grading block and must not mention synthetic images)",
    )
    readers = models.ManyToManyField(User, through="Assignment", related_name="studies")
    is_open = models.BooleanField(default=False, help_text="readers can read only open studies")
    # Blinding (issue 12a): a real image met in an earlier study would be recognised.
    allow_real_image_reuse = models.BooleanField(
        default=False,
        help_text="draw real images already used by other studies on the pool (readers may recognise them; the "
        "report and provenance say so)",
    )
    excluded_real_image_ids = models.JSONField(
        default=list, blank=True, editable=False,
        help_text="real images other studies had used when this study's cases were drawn (the draw leaves them out)",
    )
    display_check = models.BooleanField(
        default=False, help_text="readers confirm a grey-step and contrast pattern before their first case (recorded with the answers)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_ref(cls, ref: str) -> Study:
        """A study by id or by name, as command-line tools take it."""
        if ref.isdigit() and len(ref) > 18:  # no database column holds it (SQLite would overflow)
            raise cls.DoesNotExist(f"no study {ref}")
        return cls.objects.get(pk=int(ref)) if ref.isdigit() else cls.objects.get(name=ref)

    @property
    def question(self) -> str:
        return "which_is_synthetic" if self.design == Design.PAIRED else "real_or_synthetic"

    @property
    def analysed_design(self) -> str:
        """The design as the analysis (tidy CSV) knows it: a grade-then-reveal study's reveal is a mixed reading."""
        return Design.MIXED if self.design == Design.GRADE_REVEAL else self.design

    def clean(self) -> None:
        self.refuse_frozen_changes()
        if not 0.0 < self.synthetic_fraction < 1.0 and self.design == Design.MIXED:
            raise ValidationError({"synthetic_fraction": "must be strictly between 0 and 1"})
        if self.truncation <= 0 or self.truncation > 1.0:
            raise ValidationError({"truncation": "must be in (0, 1]"})
        if self.repeat_count > self.case_count:
            raise ValidationError({"repeat_count": "cannot repeat more cases than the study has"})
        self._clean_repeats_and_phases()
        if self.pk and self.cases.exists():
            old = Study.objects.get(pk=self.pk)
            frozen = [
                "design", "pool_id", "seed", "case_count", "practice_case_count", "repeat_count",
                "synthetic_fraction", "truncation", "label", "allow_real_image_reuse", "repeat_min_gap", "washout_days",
            ]
            if any(getattr(old, f) != getattr(self, f) for f in frozen):
                raise ValidationError("cases are already drawn: the design, pool and seed can no longer change")

    def _clean_repeats_and_phases(self) -> None:
        if self.repeat_count and self.repeat_min_gap and self.repeat_count > self.case_count - self.repeat_min_gap:
            raise ValidationError({"repeat_min_gap": (
                f"with {self.case_count} cases, only cases read in the first {max(self.case_count - self.repeat_min_gap, 0)} "
                f"positions can be repeated {self.repeat_min_gap} cases later: fewer repeats or a shorter gap"
            )})
        if self.design == Design.GRADE_REVEAL:
            if not 0.0 < self.synthetic_fraction < 1.0:
                raise ValidationError({"synthetic_fraction": "must be strictly between 0 and 1"})
            if self.practice_case_count:
                raise ValidationError({"practice_case_count": (
                    "a grade-then-reveal study has no practice cases: their feedback would tell readers "
                    "that synthetic images are present before the grading is done"
                )})
            if self.repeat_count:
                raise ValidationError({"repeat_count": "a grade-then-reveal study already shows every image twice (graded, then judged)"})
            for field in ("name", "instructions"):
                if word := TELLING_WORDS.search(getattr(self, field)):
                    raise ValidationError({field: (
                        f"readers see this while grading, before they are told synthetic images are present: "
                        f"leave out {word.group(0)!r} (put it in the reveal instructions)"
                    )})

    def source_problems(self, generators: list[Generator]) -> list[str]:
        """Why these generators cannot serve this study (empty when they can)."""
        problems = [] if generators else ["choose at least one generator"]
        for generator in generators:
            resolution = generator.resolution
            if self.pool_id and resolution is not None and resolution < self.pool.presentation_size:
                problems.append(
                    f"{generator} makes {resolution}px images but the pool presents {self.pool.presentation_size}px: "
                    "upscaled synthetic images would give themselves away"
                )
            if self.label is not None and generator.num_classes and not 0 <= self.label < generator.num_classes:
                problems.append(f"{generator} has classes 0..{generator.num_classes - 1}, not {self.label}")
        if self.label is not None and generators and not any(g.num_classes for g in generators):
            problems.append(f"class label {self.label} is set but no generator of the study is conditional")
        return problems

    def sources(self) -> list[Generator]:
        """The study's generators in a fixed order (by name), as the draw uses them."""
        return list(self.generators.order_by("name"))

    # Drawing cases

    def draw(self) -> list[dict]:
        """The study's cases as its seed determines them (pure: writes nothing).

        Scored cases come first (indexes 0..case_count-1), then practice cases;
        no real image is used twice. With several generators, each block's
        synthetic cases are dealt out evenly between them in a random order
        drawn from a stream of its own, so a one-generator study draws exactly
        as it did before studies could have several.
        """
        generators = self.sources()
        if problems := self.source_problems(generators):
            raise ValidationError(problems)
        if self.design == Design.GRADE_REVEAL and not (self.pk and self.questions.exists()):
            raise ValidationError("a grade-then-reveal study needs its grading question(s) before its cases are drawn")
        excluded = set(self.excluded_real_image_ids)
        real_ids = [i for i in self.pool.real_images().order_by("pixel_sha256").values_list("id", flat=True) if i not in excluded]
        rng = np.random.default_rng(self.seed)
        blocks = [(False, self.case_count), (True, self.practice_case_count)]
        flags: list[tuple[bool, bool]] = []  # (is_practice, is_synthetic) per case
        for is_practice, count in blocks:
            if self.design == Design.PAIRED:
                flags += [(is_practice, True)] * count
            else:
                synthetic = np.zeros(count, dtype=bool)
                synthetic[rng.permutation(count)[: round(count * self.synthetic_fraction)]] = True
                flags += [(is_practice, bool(s)) for s in synthetic]
        needed_real = sum(1 for _, synthetic in flags if self.design == Design.PAIRED or not synthetic)
        if needed_real > len(real_ids):
            unused = " not used by earlier studies (readers would recognise those; see allow_real_image_reuse)" if excluded else ""
            raise ValidationError(f"the study needs {needed_real} real images but pool {self.pool} has {len(real_ids)}{unused}")
        chosen = iter(rng.choice(real_ids, size=needed_real, replace=False).tolist())
        source_of = self._deal_sources(generators, flags)
        planned = []
        for index, (is_practice, synthetic) in enumerate(flags):
            seed = int(rng.integers(0, 2**31 - 1))
            # A real-only case draws as if from the first source: the stream stays as it always was.
            generator = source_of.get(index, generators[0])
            label = self.label if generator.num_classes else None
            if label is None and generator.num_classes:
                label = int(rng.integers(0, generator.num_classes))
            has_real = self.design == Design.PAIRED or not synthetic
            planned.append(
                {
                    "index": index,
                    "is_practice": is_practice,
                    "real_image_id": next(chosen) if has_real else None,
                    "synthetic_seed": seed if synthetic else None,
                    "synthetic_label": label if synthetic else None,
                    "generator_id": generator.pk if synthetic else None,
                }
            )
        return planned

    def _deal_sources(self, generators: list[Generator], flags: list[tuple[bool, bool]]) -> dict[int, Generator]:
        """Synthetic case index -> its generator, evenly within the scored and the practice block."""
        rng = np.random.default_rng([self.seed, 1])
        dealt = {}
        for practice in (False, True):
            indexes = [i for i, (is_practice, synthetic) in enumerate(flags) if synthetic and is_practice == practice]
            order = rng.permutation(len(indexes)) if len(generators) > 1 else range(len(indexes))
            for k, i in zip(order, indexes):
                dealt[i] = generators[k % len(generators)]
        return dealt

    def reused_real_cases(self) -> list[int]:
        """Case numbers (1-based) whose real image other studies on the pool also show."""
        elsewhere = set(self.real_images_used_elsewhere())
        return [c.index + 1 for c in self.cases.filter(real_image__isnull=False) if c.real_image_id in elsewhere]

    def real_images_used_elsewhere(self) -> list[int]:
        """Real images of the pool that other studies' cases already use, sorted."""
        used = Case.objects.filter(study__pool_id=self.pool_id, real_image__isnull=False).exclude(study=self)
        return sorted(set(used.values_list("real_image_id", flat=True)))

    @transaction.atomic
    def build_cases(self) -> None:
        if self.cases.exists():
            return
        # Recorded, not recomputed: rebuild_study redraws from the same exclusions even
        # after later studies have drawn their own cases from the pool.
        Pool.objects.select_for_update().filter(pk=self.pool_id).first()  # one draw per pool at a time
        self.excluded_real_image_ids = [] if self.allow_real_image_reuse else self.real_images_used_elsewhere()
        Study.objects.filter(pk=self.pk).update(excluded_real_image_ids=self.excluded_real_image_ids)
        Case.objects.bulk_create(Case(study=self, **planned) for planned in self.draw())

    def privacy_counts(self) -> dict[str, dict[str, int]]:
        """Per screened generator: its synthetic cases and the candidates refused for them."""
        screened = self.cases.exclude(generator__privacy_sha256="").filter(synthetic_image__isnull=False)
        rows = screened.order_by().values("generator__name").annotate(cases=models.Count("pk"), refused=models.Sum("privacy_refusals"))
        return {row["generator__name"]: {"cases": row["cases"], "refused": row["refused"]} for row in rows}

    def privacy_summary(self) -> str:
        """One sentence per screened generator, for the report and the admin."""
        sentences = []
        for name, counts in sorted(self.privacy_counts().items()):
            cases = f"{counts['cases']} synthetic case{'' if counts['cases'] == 1 else 's'}"
            refused = (
                "refused none" if not counts["refused"]
                else f"refused {counts['refused']} as too similar to a training image, each replaced by the next seed"
            )
            sentences.append(f"{name}'s privacy screen checked every candidate for its {cases} and {refused}.")
        return " ".join(sentences)

    def synthetic_pending(self) -> models.QuerySet[Case]:
        return self.cases.filter(synthetic_seed__isnull=False, synthetic_image__isnull=True)

    def is_ready(self) -> bool:
        return self.cases.exists() and not self.synthetic_pending().exists()

    def assign(self, reader: User) -> Assignment:
        assignment, created = Assignment.objects.get_or_create(
            study=self, reader=reader, defaults={"seed": self.reader_seed(reader)}
        )
        if created or not assignment.slots.exists():
            assignment.lay_out()
        return assignment

    def reader_seed(self, reader: User) -> int:
        return int(np.random.SeedSequence([self.seed, reader.pk]).generate_state(1, dtype=np.uint64)[0] >> 2)


class Question(models.Model):
    """A further question asked with every case of a mixed study, e.g. a Kellgren–Lawrence grade.

    With ``truth_from_label`` the reference answer is the image's class label:
    the label a real image was imported with, or the label a synthetic image
    was generated for. Answers are analysed separately on real and synthetic
    images.
    """

    class Kind(models.TextChoices):
        CHOICE = "choice", "One of a list (grades, categories)"
        TEXT = "text", "Free text"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=50, help_text="column name in exports, e.g. kl_grade")
    label = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHOICE)
    choices = models.CharField(max_length=500, blank=True, help_text="comma-separated, e.g. 0,1,2,3,4")
    required = models.BooleanField(default=True)
    truth_from_label = models.BooleanField(default=False)
    order = models.PositiveSmallIntegerField(default=0)
    # Analysis (issue 13): how a choice question's kappas are weighted.
    scale = models.CharField(
        max_length=8, blank=True, default="", choices=[("nominal", "Nominal (unordered categories)"),
                                                       ("ordinal", "Ordinal (ordered grades)")],
        help_text="choice questions: nominal gets unweighted and Fleiss' kappa, ordinal linear and quadratic "
                  "weighted kappa; blank: ordinal when every choice is a number, else nominal",
    )

    class Meta:
        ordering = ["study", "order", "pk"]
        constraints = [models.UniqueConstraint(fields=["study", "key"], name="unique_question_key")]

    def __str__(self) -> str:
        return f"{self.study}: {self.label}"

    def clean(self) -> None:
        if self.key in ("which_is_synthetic", "real_or_synthetic"):
            raise ValidationError({"key": "this key is the study's own question"})
        if self.kind == self.Kind.CHOICE and len(self.choice_list()) < 2:
            raise ValidationError({"choices": "give at least two choices"})
        if self.study_id and self.study.design == Design.PAIRED:
            raise ValidationError("further questions are asked of single images: use a mixed study")
        if self.study_id and self.study.design == Design.GRADE_REVEAL and (word := TELLING_WORDS.search(self.label)):
            raise ValidationError({"label": f"readers see this while grading, before they are told synthetic images are present: leave out {word.group(0)!r}"})

    def refuse_if_frozen(self) -> None:
        if self.study.is_frozen:
            raise ValidationError("the protocol was frozen when the study was opened: its questions can no longer change")

    def save(self, *args, **kwargs):
        self.refuse_if_frozen()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self.refuse_if_frozen()
        return super().delete(*args, **kwargs)

    def choice_list(self) -> list[str]:
        return [c.strip() for c in self.choices.split(",") if c.strip()]

    def validate_answer(self, value) -> str | None:
        """The answer as stored, None when unanswered; ValueError when invalid."""
        text = "" if value is None else str(value).strip()
        if not text:
            if self.required:
                raise ValueError(f"{self.label}: an answer is required")
            return None
        if self.kind == self.Kind.CHOICE and text not in self.choice_list():
            raise ValueError(f"{self.label}: answer must be one of {', '.join(self.choice_list())}")
        if len(text) > 2000:
            raise ValueError(f"{self.label}: at most 2000 characters")
        return text


class Case(models.Model):
    """A display set: one real and one synthetic image (paired) or one image (mixed)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="cases")
    index = models.PositiveIntegerField()
    real_image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    synthetic_image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    synthetic_seed = models.BigIntegerField(null=True, blank=True)
    synthetic_label = models.IntegerField(null=True, blank=True)
    generator = models.ForeignKey(Generator, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    privacy_refusals = models.PositiveSmallIntegerField(
        default=0, help_text="candidates the privacy screen refused before the one stored (see generation_seed)"
    )
    is_practice = models.BooleanField(default=False)

    class Meta:
        ordering = ["study", "index"]
        constraints = [models.UniqueConstraint(fields=["study", "index"], name="unique_case_index")]

    def __str__(self) -> str:
        return f"{self.study} case {self.index + 1}"

    @property
    def is_synthetic(self) -> bool:
        """Mixed design: whether this single-image case is synthetic."""
        return self.synthetic_seed is not None and self.real_image_id is None

    @property
    def is_ready(self) -> bool:
        return self.synthetic_seed is None or self.synthetic_image_id is not None

    @property
    def generation_seed(self) -> int | None:
        """The seed the stored synthetic image was made from: the drawn seed, or its replacement
        after ``privacy_refusals`` refusals (generator.sampling.replacement_seed)."""
        if self.synthetic_seed is None:
            return None
        from generator.sampling import replacement_seed

        return replacement_seed(self.synthetic_seed, self.privacy_refusals)


class Assignment(models.Model):
    """A reader's place in a study: their own order and sides, drawn from their own seed."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(User, on_delete=models.CASCADE, related_name="assignments")
    seed = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "reader"], name="one_assignment_per_reader")]

    def __str__(self) -> str:
        return f"{self.reader} in {self.study}"

    def save(self, *args, **kwargs):
        if self.seed is None:  # added in the admin: the seed the study derives for this reader
            self.seed = self.study.reader_seed(self.reader)
        super().save(*args, **kwargs)

    def plan(self) -> list[tuple[int, str]]:
        """(case index, synthetic side) in reading order; side is '' in mixed studies.

        Practice cases come first, then scored cases, each block in its own
        random order. ``repeat_count`` scored cases come a second time, each at
        a random later position. In paired studies the synthetic image is on
        the left for exactly half of each block and of the repeats (one more on
        one side when a count is odd).
        """
        study = self.study
        rng = np.random.default_rng(self.seed)
        if study.design == Design.GRADE_REVEAL:
            # Every case graded in one random order, then judged in a new one (lay_out sets the phases).
            grading, reveal = rng.permutation(study.case_count).tolist(), rng.permutation(study.case_count).tolist()
            return [(index, "") for index in grading + reveal]
        practice = range(study.case_count, study.case_count + study.practice_case_count)
        scored = rng.permutation(study.case_count).tolist()
        # With a minimum gap, only cases read early enough can come back that many cases later.
        eligible = scored[: study.case_count - study.repeat_min_gap] if study.repeat_min_gap else scored
        repeats = rng.choice(eligible, size=study.repeat_count, replace=False).tolist()
        planned = list(zip(rng.permutation(list(practice)).tolist(), self._sides(rng, len(practice))))
        planned_scored = list(zip(scored, self._sides(rng, len(scored))))
        for index, side in zip(repeats, self._sides(rng, len(repeats))):
            if study.washout_days:
                planned_scored.append((index, side))  # the wash-out block, after every first reading
                continue
            first = next(i for i, (case, _) in enumerate(planned_scored) if case == index)
            at = int(rng.integers(first + 1 + study.repeat_min_gap, len(planned_scored) + 1))
            planned_scored.insert(at, (index, side))
        return planned + planned_scored

    def _sides(self, rng: np.random.Generator, count: int) -> list[str]:
        if self.study.design != Design.PAIRED:
            return [""] * count
        sides = ["left"] * (count // 2) + ["right"] * (count // 2)
        if count % 2:
            sides.append(str(rng.choice(["left", "right"])))
        return [sides[i] for i in rng.permutation(count)]

    @transaction.atomic
    def lay_out(self) -> None:
        cases = {case.index: case for case in self.study.cases.all()}
        Slot.objects.bulk_create(
            Slot(assignment=self, position=position, case=cases[index], synthetic_side=side, phase=self.phase_at(position))
            for position, (index, side) in enumerate(self.plan(), start=1)
        )

    def phase_at(self, position: int) -> str:
        """The block a reading position belongs to: grading then reveal, the wash-out repeats, or none."""
        study = self.study
        first_block = study.practice_case_count + study.case_count
        if study.design == Design.GRADE_REVEAL:
            return Phase.GRADE if position <= study.case_count else Phase.REVEAL
        if study.washout_days and position > first_block:
            return Phase.WASHOUT
        return Phase.NONE

    def washout_opens_at(self):
        """When the wash-out repeat block opens: ``washout_days`` after the reader's last first reading;
        None while that reading is still to come (or the study has no wash-out)."""
        if not self.study.washout_days:
            return None
        first = self.slots.exclude(phase=Phase.WASHOUT)
        if first.filter(answers__isnull=True).exists():
            return None
        last = Answer.objects.filter(slot__in=first).aggregate(models.Max("answered_at"))["answered_at__max"]
        return None if last is None else last + timedelta(days=self.study.washout_days)

    def waiting_until(self, slot: Slot | None = None):
        """The date the reader's next case may be served, when that is later than now (a wash-out); else None.

        ``slot``: the next slot, when the caller has it already (else it is looked up)."""
        slot = slot or self.next_slot()
        if slot is None or slot.phase != Phase.WASHOUT:
            return None
        opens = self.washout_opens_at()
        return opens if opens is not None and timezone.now() < opens else None

    def next_slot(self) -> Slot | None:
        """The first slot without an answer: where a reader resumes."""
        unanswered = self.slots.filter(answers__isnull=True)
        return unanswered.select_related("case__real_image", "case__synthetic_image").order_by("position").first()

    def progress(self) -> tuple[int, int]:
        """(answered, total) slots, practice included."""
        counts = self.slots.aggregate(
            done=models.Count("pk", filter=models.Q(answers__isnull=False), distinct=True), total=models.Count("pk", distinct=True)
        )
        return counts["done"], counts["total"]

    def seconds_left(self, done: int, total: int) -> int | None:
        """Estimated reading time left: this reader's median time so far times the cases left."""
        if done >= total:
            return None
        answers = Answer.objects.filter(slot__assignment=self, question=self.study.question, revision=0)
        times = sorted(answers.values_list("reading_ms", flat=True))
        if not times:
            return None
        return round(times[len(times) // 2] / 1000 * (total - done))

    def mark_completed_if_done(self) -> None:
        if self.completed_at is None and self.next_slot() is None:
            self.completed_at = timezone.now()
            self.save(update_fields=["completed_at"])


class SlotQuerySet(models.QuerySet):
    def for_answer(self, study_id: int, reader: User, position: int, key: uuid.UUID) -> Slot | None:
        """The reader's slot at ``position`` with all that answering it looks up, in one query.

        With the case, assignment and study, it carries whether the slot was answered already
        (``is_answered``), whether idempotency key ``key`` was used on any answer (``key_used``),
        whether a later slot exists (``is_last`` is False) and whether the study has further
        questions (``study_has_questions``: False spares questions_to_ask its query). None when
        the reader has no such slot in the study.
        """
        later = Slot.objects.filter(assignment=models.OuterRef("assignment"), position__gt=models.OuterRef("position"))
        slots = self.select_related("case", "assignment__study").annotate(
            is_answered=models.Exists(Answer.objects.filter(slot=models.OuterRef("pk"))),
            key_used=models.Exists(Answer.objects.filter(idempotency_key=key)),
            is_last=~models.Exists(later),
            study_has_questions=models.Exists(Question.objects.filter(study=models.OuterRef("assignment__study"))),
        )
        try:  # get(), not first(): no ORDER BY to build and run (a reader has one slot per position)
            return slots.get(assignment__study_id=study_id, assignment__reader=reader, position=position)
        except Slot.DoesNotExist:
            return None


class Slot(models.Model):
    """One case at one reading position for one reader."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveIntegerField()
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="slots")
    synthetic_side = models.CharField(max_length=5, blank=True)
    first_served_at = models.DateTimeField(null=True, blank=True)
    # Set with first_served_at when the study has a time limit: a reload keeps counting down.
    deadline = models.DateTimeField(null=True, blank=True)
    phase = models.CharField(max_length=10, choices=Phase.choices, blank=True, default=Phase.NONE)

    objects = SlotQuerySet.as_manager()
    # SlotQuerySet.for_answer annotates it from the database; False only when the study has no further question.
    study_has_questions = True

    class Meta:
        ordering = ["assignment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "position"], name="unique_slot_position"),
        ]

    def questions_to_ask(self) -> tuple[str | None, list[Question]]:
        """What this slot asks: (the study's own question, or None when not asked; the further questions).

        A grade-then-reveal study asks only its grading questions in the grading block (readers are
        not told synthetic images are present) and only real or synthetic (+ confidence) in the reveal.
        The one place that decides it: the reading page, the case description and the answer's
        validation all follow it.
        """
        study = self.assignment.study
        if self.phase == Phase.REVEAL:
            return study.question, []
        further = list(study.questions.all()) if self.study_has_questions else []
        return (None if self.phase == Phase.GRADE else study.question), further

    def images_in_display_order(self) -> list[Image]:
        """Left then right (paired), or the one image (mixed)."""
        case = self.case
        if self.assignment.study.design == Design.PAIRED:
            pair = [case.real_image, case.synthetic_image]
            return pair[::-1] if self.synthetic_side == "left" else pair
        return [case.synthetic_image if case.is_synthetic else case.real_image]

    @property
    def truth(self) -> str:
        if self.assignment.study.design == Design.PAIRED:
            return self.synthetic_side
        return Source.SYNTHETIC if self.case.is_synthetic else Source.REAL

    def truth_for(self, question: str, labelled: frozenset[str] = frozenset()) -> str:
        """Reference answer to the study's question or to a further question ('' if none).

        ``labelled`` holds the keys of the study's questions whose truth is the
        image's class label (the caller looks them up once, not per answer).
        """
        if question == self.assignment.study.question:
            return self.truth
        if question not in labelled:
            return ""
        label = self.case.synthetic_label if self.case.is_synthetic else self.case.real_image.origin.get("label")
        return "" if label is None else str(label)

    def latest_revision(self) -> int | None:
        return self.answers.aggregate(models.Max("revision"))["revision__max"]

    @property
    def is_revisable(self) -> bool:
        """Whether a reader may answer this slot again (go back and revise)."""
        return self.assignment.study.allow_back and not self.case.is_practice

    @transaction.atomic
    def record(self, key: uuid.UUID, responses: dict[str, str], *, confidence: int | None, reading_ms: int, client: dict) -> int:
        """Store one reading of this slot: the study's question and any further ones.

        Every row of one reading shares its idempotency key and revision, so a
        repeated request is recognised as a whole. Returns the revision stored
        (0 for a first answer, more when a reader went back and revised).

        The database decides races, not a check before the insert: a slot that
        may not be revised only ever receives revision 0, so the unique
        constraint on (slot, question, revision) lets exactly one reading in
        and raises IntegrityError for any other, however close together they
        arrive (two tabs, two workers). A revisable slot claims the next
        revision number, and two readings claiming the same one collide the
        same way.
        """
        revision = 0
        if self.is_revisable:
            latest = self.latest_revision()
            revision = 0 if latest is None else latest + 1
        now = timezone.now()
        Answer.objects.bulk_create(
            Answer(
                slot=self,
                question=question,
                idempotency_key=key,
                revision=revision,
                answer=value,
                confidence=confidence if question == self.assignment.study.question else None,
                served_at=self.first_served_at,
                answered_at=now,
                reading_ms=reading_ms,
                client=client,
            )
            for question, value in responses.items()
        )
        return revision

    def stored_reading(self, key: uuid.UUID) -> dict | None:
        """What was stored under idempotency key ``key`` (None if nothing), to compare with a repeat."""
        rows = list(Answer.objects.filter(slot=self, idempotency_key=key))
        if not rows:
            return None
        main = self.assignment.study.question
        return {
            "responses": {row.question: row.answer for row in rows},
            "confidence": next((row.confidence for row in rows if row.question == main), None),
            "reading_ms": rows[0].reading_ms,
            "client": rows[0].client,
        }

    def mark_served(self) -> None:
        """Record the first serving, and with a time limit the deadline it starts (kept over reloads).

        The deadline allows for the neutral screen the reader sees before the images appear.
        """
        if self.first_served_at is None:
            now = timezone.now()
            study = self.assignment.study
            limit = study.time_limit_seconds
            deadline = now + timedelta(seconds=limit, milliseconds=study.blank_ms) if limit else None
            if Slot.objects.filter(pk=self.pk, first_served_at__isnull=True).update(first_served_at=now, deadline=deadline):
                self.first_served_at, self.deadline = now, deadline
            else:  # another request served it first: its times count
                self.refresh_from_db(fields=["first_served_at", "deadline"])

    def seconds_to_deadline(self, now=None) -> float | None:
        """Time left to read this case (0 once it ran out); None without a time limit."""
        if self.deadline is None:
            return None
        return max(0.0, (self.deadline - (now or timezone.now())).total_seconds())



class AnswerQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("answers are append-only")

    def delete(self):
        raise TypeError("answers are append-only")


class Answer(models.Model):
    """A reader's judgment on one question of one slot: stored once, never changed.

    A reader allowed to go back revises by adding a row with a higher
    ``revision``; analyses use the latest.
    """

    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="answers")
    question = models.CharField(max_length=50)
    idempotency_key = models.UUIDField()
    revision = models.PositiveSmallIntegerField(default=0)
    answer = models.TextField()
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    served_at = models.DateTimeField()
    answered_at = models.DateTimeField(default=timezone.now)
    reading_ms = models.PositiveIntegerField(help_text="client-measured reading time")
    client = models.JSONField(default=dict, blank=True, help_text="viewer state and tool use at the moment of answering")

    objects = AnswerQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slot", "question", "revision"], name="one_answer_per_question_revision"),
            models.UniqueConstraint(fields=["idempotency_key", "question"], name="unique_idempotency_key"),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("answers are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("answers are append-only")


# ---- Blinding (issue 12a): image URLs per reader and study ----


def new_image_token() -> str:
    return secrets.token_urlsafe(24)


class ServedImage(models.Model):
    """The URL token under which one reader sees one image in one study.

    Each assignment gets its own token for each of its images, so neither the URL nor
    the browser cache links an image's appearances in two studies, or for two readers.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="served_images")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    token = models.CharField(max_length=40, unique=True, default=new_image_token, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "image"], name="one_token_per_assignment_image")]

    def __str__(self) -> str:
        return f"{self.assignment}: {self.token[:8]}"

    @classmethod
    def tokens_for(cls, assignment: Assignment, images: list[Image]) -> list[str]:
        """The assignment's token for each image, made on first use (one query when they exist)."""
        found = dict(cls.objects.filter(assignment=assignment, image__in=images).values_list("image_id", "token"))
        for image in images:
            if image.pk not in found:
                try:
                    with transaction.atomic():
                        found[image.pk] = cls.objects.create(assignment=assignment, image=image).token
                except IntegrityError:  # a concurrent request made it first
                    found[image.pk] = cls.objects.get(assignment=assignment, image=image).token
        return [found[image.pk] for image in images]
# Append-only records of a study (audit log, exclusions) live in records.py.
from readerstudy.studies.records import AuditEntry, Exclusion  # noqa: E402,F401
