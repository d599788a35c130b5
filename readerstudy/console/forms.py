"""The study builder's forms: one per design, showing only the fields that apply."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import User
from django.forms import inlineformset_factory

from readerstudy.accounts.models import ReaderGroup, Role
from readerstudy.studies.lifecycle import PROTOCOL_FIELDS, State
from readerstudy.studies.models import Design, Generator, Question, Study

COMMON_FIELDS = [
    "name", "pool", "generators", "case_count", "practice_case_count", "repeat_count", "repeat_min_gap", "washout_days",
    "allow_real_image_reuse", "instructions", "display_check", "time_limit_seconds", "allow_back", "blank_ms",
    "break_every", "equivalence_margin", "truncation", "label", "seed",
]
# Grade-then-reveal: no practice (its feedback would tell) and no repeats (every image is read twice
# already); the reveal block has instructions of its own.
GRADE_REVEAL_FIELDS = [
    name for name in COMMON_FIELDS[:4] + ["synthetic_fraction"] + COMMON_FIELDS[4:]
    if name not in ("practice_case_count", "repeat_count", "repeat_min_gap", "washout_days")
]
GRADE_REVEAL_FIELDS.insert(GRADE_REVEAL_FIELDS.index("instructions") + 1, "reveal_instructions")
# The fields each design's form shows, in order. A new design (grade-then-reveal) adds its entry
# here and in DESIGN_HELP and DESIGN_NAMES; the views and templates follow these tables.
DESIGN_FIELDS: dict[str, list[str]] = {
    Design.PAIRED: COMMON_FIELDS,
    Design.MIXED: COMMON_FIELDS[:4] + ["synthetic_fraction"] + COMMON_FIELDS[4:],
    Design.GRADE_REVEAL: GRADE_REVEAL_FIELDS,
}
DESIGN_HELP: dict[str, str] = {
    Design.PAIRED: (
        "Each case shows one real and one synthetic radiograph side by side, and the reader says which is "
        "synthetic (as in the pelvis study). Chance is 50 %; each reader sees the synthetic image on the left "
        "in exactly half of their cases."
    ),
    Design.MIXED: (
        "Each case shows a single radiograph, real or synthetic, and the reader says which it is with a "
        "confidence from 1 (guessing) to 5 (certain). Further questions, such as a Kellgren–Lawrence grade, "
        "are asked of every image."
    ),
    Design.GRADE_REVEAL: (
        "As in the knee study: readers first grade every image with your questions (say a Kellgren–Lawrence "
        "grade) without being told that some images are synthetic, so their grading is not coloured by it. "
        "Only after the last grade are they told, and then they see the same images again in a new order and "
        "say real or synthetic with a confidence from 1 to 5. Add at least one grading question; the name and "
        "the instructions are seen while grading, so they must not mention synthetic images."
    ),
}
# What the dashboard's buttons and the builder's title call each design.
DESIGN_NAMES: dict[str, str] = {Design.PAIRED: "paired", Design.MIXED: "mixed", Design.GRADE_REVEAL: "grade-then-reveal"}
PLAIN_LABELS = {
    "pool": "Real images from pool",
    "generators": "Synthetic sources",
    "case_count": "Scored cases",
    "practice_case_count": "Practice cases (with feedback, not analysed)",
    "repeat_count": "Repeated cases (for intra-reader agreement)",
    "time_limit_seconds": "Time limit per case, seconds (blank: none)",
    "allow_back": "Readers may go back and revise scored answers",
    "blank_ms": "Blank screen between cases, milliseconds",
    "break_every": "Offer a break every N cases (0: never)",
    "equivalence_margin": "Equivalence margin (decides the headline verdict)",
    "truncation": "Truncation ψ (1.0: none; lower gives safer, less varied images)",
    "label": "Class label for a conditional generator (blank: one drawn per case)",
    "seed": "Seed (draws the cases; keep it to rebuild the study exactly)",
    "synthetic_fraction": "Share of cases that are synthetic",
    "repeat_min_gap": "Minimum cases between a case and its repeat",
    "washout_days": "Wash-out before the repeats, days (0: repeats mixed in)",
    "allow_real_image_reuse": "Allow real images already shown in other studies",
    "display_check": "Readers check their display before the first case",
    "reveal_instructions": "Instructions for the reveal (real or synthetic) block",
    "reader_groups": "Assign reader groups",
}


PLAIN_HELP = {
    "name": "shown to readers and in exports",
    "generators": "with several, the synthetic cases are dealt out evenly between them",
    "case_count": "cases every reader reads and the analysis counts",
    "synthetic_fraction": "e.g. 0.5: half the cases show a synthetic image",
    "practice_case_count": "read first, with the right answer shown after each",
    "repeat_count": "scored cases shown a second time, later, to measure each reader's consistency",
    "instructions": "shown to readers before the first case",
    "time_limit_seconds": "when it runs out the images are hidden and an answer is still required",
    "allow_back": "off by default: a first impression is what the study measures",
    "blank_ms": "a neutral screen between cases, so one image does not linger into the next",
    "break_every": "",
    "equivalence_margin": "accuracy within 50 % ± this margin counts as equivalent to chance",
    "truncation": "",
    "label": "",
    "seed": "a new random seed is drawn for every study",
    "repeat_min_gap": "so a reader is less likely to remember their first answer",
    "washout_days": "the repeats become a last block, opened this many days after the reader's last first reading",
    "allow_real_image_reuse": "off by default: a reader who met an image in an earlier study would recognise it as real",
    "display_check": "a grey-step and contrast pattern; each reader's answer is recorded with their readings",
    "reveal_instructions": "shown after the last grade, when readers are told some images are synthetic",
    "reader_groups": "every member of a chosen group is assigned (as if ticked above)",
}
# The builder's sections, in order; fields a design does not use are left out.
SECTIONS = [
    ("Images and cases", ["name", "pool", "generators", "case_count", "synthetic_fraction", "practice_case_count", "repeat_count",
                          "repeat_min_gap", "washout_days", "allow_real_image_reuse"]),
    ("Reading", ["instructions", "reveal_instructions", "display_check", "time_limit_seconds", "allow_back", "blank_ms", "break_every"]),
    ("Analysis and generation", ["equivalence_margin", "truncation", "label", "seed"]),
    ("People", ["readers", "reader_groups", "coordinators"]),
]


def readers() -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        User.objects.filter(profile__role=Role.READER, is_active=True).order_by("username"),
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="each reader gets their own random order (and, in paired studies, sides)",
    )


class StudyForm(forms.ModelForm):
    """Create or edit a study of one design. Frozen fields are shown disabled, with the reason."""

    readers = readers()
    reader_groups = forms.ModelMultipleChoiceField(ReaderGroup.objects.all(), required=False, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Study
        fields = sorted({f for fields in DESIGN_FIELDS.values() for f in fields} | {"coordinators"})
        widgets = {
            "generators": forms.CheckboxSelectMultiple,
            "coordinators": forms.CheckboxSelectMultiple,
            "instructions": forms.Textarea(attrs={"rows": 4}),
            "reveal_instructions": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, design: str, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.design = design
        self.instance.design = design
        for name in list(self.fields):
            if name not in DESIGN_FIELDS[design] + ["readers", "reader_groups", "coordinators"]:
                del self.fields[name]
        for name, field in self.fields.items():
            field.label = PLAIN_LABELS.get(name, field.label)
            field.help_text = PLAIN_HELP.get(name, field.help_text)
        for name in ("repeat_min_gap", "washout_days"):  # left out or blank: none (the model's default, 0)
            if name in self.fields:
                self.fields[name].required = False
        self.fields["generators"].queryset = Generator.objects.order_by("name")
        self.fields["coordinators"].queryset = (
            User.objects.filter(profile__role=Role.COORDINATOR).exclude(pk=user.pk).order_by("username")
        )
        self.fields["coordinators"].help_text = "other coordinators who may see and edit this study"
        if self.instance.pk:
            self.fields["readers"].initial = list(self.instance.assignments.values_list("reader", flat=True))
        self.frozen_reason = self._frozen_reason()
        if self.frozen_reason:
            for name in self.locked_fields():
                self.fields[name].disabled = True

    def sections(self) -> list[tuple[str, list]]:
        return [(title, [self[name] for name in names if name in self.fields]) for title, names in SECTIONS]

    def _frozen_reason(self) -> str:
        study = self.instance
        if study.is_frozen:
            return "The protocol was frozen when the study was opened: only the name, the readers and the coordinators can change."
        if study.state == State.PREPARING:
            return "The study is being prepared: the design, pool, sources, seed and case counts are fixed."
        if study.pk and study.cases.exists():
            return "Cases are drawn: the design, pool, sources, seed and case counts are fixed (clone the study to change them)."
        return ""

    def locked_fields(self) -> list[str]:
        if self.instance.is_frozen:
            locked = {name.removesuffix("_id") for name in PROTOCOL_FIELDS} | {"generators"}
        else:
            locked = {"pool", "generators", "seed", "case_count", "practice_case_count", "repeat_count",
                      "synthetic_fraction", "truncation", "label", "allow_real_image_reuse", "repeat_min_gap", "washout_days"}
        return [name for name in self.fields if name in locked]

    def clean(self):
        cleaned = super().clean()
        for name in ("repeat_min_gap", "washout_days"):
            if name in cleaned and cleaned[name] is None:
                cleaned[name] = 0
        study = self.instance
        for name in ("pool", "case_count", "practice_case_count", "synthetic_fraction", "label", "repeat_min_gap", "washout_days"):
            if name in cleaned:
                setattr(study, name, cleaned[name])
        if cleaned.get("pool") is not None and not self.errors:
            needed, available = study.real_images_needed(), cleaned["pool"].real_images().count()
            if needed > available:
                self.add_error("case_count", f"these cases need {needed} real images but pool {cleaned['pool']} has {available}")
        if "generators" in cleaned and not self.fields["generators"].disabled:
            for problem in study.source_problems(list(cleaned.get("generators") or [])):
                self.add_error("generators", problem)
        return cleaned


class QuestionForm(forms.ModelForm):
    class Meta:
        model = Question
        fields = ["key", "label", "kind", "choices", "required", "truth_from_label", "order"]
        help_texts = {"truth_from_label": "the reference answer is the image's class label (e.g. a KL grade)"}


QuestionFormSet = inlineformset_factory(Study, Question, form=QuestionForm, extra=1, can_delete=True)


class CloneForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="the new study's name")
    include_readers = forms.BooleanField(required=False, initial=True, label="Assign the same readers")
    keep_seed = forms.BooleanField(
        required=False, label="Keep the same seed (the same cases are drawn; leave unticked for a new draw)"
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Study.objects.filter(name=name).exists():
            raise forms.ValidationError("a study of that name exists")
        return name


class ExclusionForm(forms.Form):
    reader = forms.ModelChoiceField(queryset=User.objects.none())
    position = forms.IntegerField(
        required=False, min_value=1, label="Reading position (blank: exclude every reading of this reader)",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="recorded and shown with the analysis")

    def __init__(self, *args, study: Study, **kwargs):
        super().__init__(*args, **kwargs)
        self.study = study
        self.fields["reader"].queryset = User.objects.filter(assignments__study=study).order_by("username")

    def clean(self):
        cleaned = super().clean()
        reader, position = cleaned.get("reader"), cleaned.get("position")
        if reader is not None:
            assignment = self.study.assignments.get(reader=reader)
            cleaned["assignment"] = assignment
            cleaned["slot"] = None
            if position is not None:
                cleaned["slot"] = assignment.slots.filter(position=position).first()
                if cleaned["slot"] is None:
                    self.add_error("position", f"{reader.username} has no reading at position {position}")
        return cleaned
