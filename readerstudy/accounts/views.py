"""Readers: invitations by single-use expiring link, reader groups, and the console page for both.

Password reset is Django's own (django.contrib.auth views, wired in readerstudy/urls.py) with the
site's templates; mail goes through EMAIL_BACKEND (the console by default, SMTP by configuration).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from readerstudy.accounts.models import (
    INVITATION_DAYS, Invitation, InvitationProblem, Profile, ReaderGroup, Role, Specialty, profile_of,
)
from readerstudy.console.permissions import coordinator_required
from readerstudy.studies.models import Study


class InviteForm(forms.Form):
    email = forms.EmailField(required=False, help_text="the link is e-mailed here; leave empty to pass the link on yourself")
    study = forms.ModelChoiceField(Study.objects.order_by("name"), required=False, help_text="assign the reader to this study on joining")
    group = forms.ModelChoiceField(ReaderGroup.objects.all(), required=False, help_text="add the reader to this group on joining")
    days = forms.IntegerField(min_value=1, max_value=90, initial=INVITATION_DAYS, label="Valid for (days)")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["study"].queryset = coordinated_studies(user)


class GroupForm(forms.Form):
    name = forms.CharField(max_length=100, label="Group name")
    members = forms.ModelMultipleChoiceField(
        User.objects.filter(profile__role=Role.READER).order_by("username"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="readers who join by an invitation naming the group are added as they join",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if ReaderGroup.objects.filter(name=name).exists():
            raise forms.ValidationError(f"a group named {name} exists already")
        return name


class AssignGroupForm(forms.Form):
    group = forms.ModelChoiceField(ReaderGroup.objects.all(), empty_label=None)
    study = forms.ModelChoiceField(Study.objects.order_by("name"), empty_label=None)

    def __init__(self, *args, user, **kwargs):
        # The invitation form on the same page has a study and a group too: its own ids keep each label on its field.
        kwargs.setdefault("auto_id", "assign_%s")
        super().__init__(*args, **kwargs)
        self.fields["study"].queryset = coordinated_studies(user)


def coordinated_studies(user):
    """The studies a coordinator may enrol readers in: those they coordinate, as everywhere in the console."""
    return Study.objects.coordinated_by(user).order_by("name")


class ReaderDetailsForm(forms.Form):
    specialty = forms.ChoiceField(choices=Specialty.choices)
    years_experience = forms.IntegerField(min_value=0, max_value=70, label="Years of experience in this specialty")


class JoinForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="for resetting a forgotten password")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


def invitation_link(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("accept_invitation", args=[token]))


@coordinator_required
def readers(request: HttpRequest) -> HttpResponse:
    """Invite readers, see invitations, build reader groups and assign a group to a study."""
    invite_form = InviteForm(request.POST if "invite" in request.POST else None, user=request.user)
    group_form = GroupForm(request.POST if "create_group" in request.POST else None)
    assign_form = AssignGroupForm(request.POST if "assign_group" in request.POST else None, user=request.user)
    issued = None
    if invite_form.is_bound and invite_form.is_valid():
        data = invite_form.cleaned_data
        invitation, token = Invitation.issue(
            created_by=request.user, email=data["email"], study=data["study"], group=data["group"], days=data["days"],
        )
        link = invitation_link(request, token)
        if invitation.email:
            send_mail(
                "Your invitation to a reader study",
                f"You are invited to read in a study on {request.get_host()}.\n\nOpen this link to create your account "
                f"(it works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n\n{link}\n",
                settings.DEFAULT_FROM_EMAIL, [invitation.email],
            )
        issued = {"invitation": invitation, "link": link}
        invite_form = InviteForm(user=request.user)
    elif group_form.is_bound and group_form.is_valid():
        group = ReaderGroup.objects.create(name=group_form.cleaned_data["name"])
        group.members.set(group_form.cleaned_data["members"])
        return redirect(reverse("console:readers") + "#groups")
    elif assign_form.is_bound and assign_form.is_valid():
        group, study = assign_form.cleaned_data["group"], assign_form.cleaned_data["study"]
        with transaction.atomic():
            assigned = group.assign_to(study, by=request.user)
        return render_readers(request, invite_form, group_form, AssignGroupForm(user=request.user), assigned_note=(
            f"{len(assigned)} reader{'s' if len(assigned) != 1 else ''} of {group} assigned to {study}."
        ))
    return render_readers(request, invite_form, group_form, assign_form, issued=issued)


def render_readers(request, invite_form, group_form, assign_form, issued=None, assigned_note="") -> HttpResponse:
    people = User.objects.filter(profile__role=Role.READER).select_related("profile").prefetch_related(
        Prefetch("reader_groups", queryset=ReaderGroup.objects.order_by("name"))
    ).order_by("username")
    context = {
        "invite_form": invite_form, "group_form": group_form, "assign_form": assign_form, "issued": issued,
        "assigned_note": assigned_note, "people": people,
        "invitations": Invitation.objects.select_related("study", "group", "used_by")[:30],
        "groups": ReaderGroup.objects.prefetch_related(Prefetch("members", queryset=User.objects.order_by("username"))),
    }
    return render(request, "console/readers/readers.html", context)


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Open an invitation: a new account (username, password, specialty, experience), or bind the one logged in."""
    try:
        invitation = Invitation.for_token(token)
    except InvitationProblem as problem:
        return render(request, "accounts/invitation_problem.html", {"problem": str(problem)}, status=410)
    details = ReaderDetailsForm(request.POST or None, initial=_current_details(request))
    join = None if request.user.is_authenticated else JoinForm(request.POST or None, initial={"email": invitation.email})
    if request.method == "POST" and details.is_valid() and (join is None or join.is_valid()):
        try:
            with transaction.atomic():
                user = request.user if join is None else join.save()
                profile = profile_of(user)
                profile.specialty = details.cleaned_data["specialty"]
                profile.years_experience = details.cleaned_data["years_experience"]
                profile.save()
                invitation.accept(user)  # refuses a second, concurrent use: the new account is rolled back with it
        except InvitationProblem as problem:
            return render(request, "accounts/invitation_problem.html", {"problem": str(problem)}, status=410)
        if join is not None:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    context = {"invitation": invitation, "details": details, "join": join}
    return render(request, "accounts/accept_invitation.html", context)


def _current_details(request: HttpRequest) -> dict:
    if not request.user.is_authenticated:
        return {"years_experience": 0}
    profile = Profile.objects.filter(user=request.user).first()
    return {"specialty": profile.specialty, "years_experience": profile.years_experience} if profile else {}
