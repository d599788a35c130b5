"""Build the demo: a simulated archive, the demo generator, two studies and four people."""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from readerstudy.accounts.models import Profile, Role, Specialty
from readerstudy.analysis.machine_reader import compute_machine_reading
from readerstudy.analysis.models import MachineReading
from readerstudy.archive.importing import import_images
from readerstudy.archive.models import Pool
from readerstudy.jobs.engine import enqueue
from readerstudy.studies.lifecycle import State
from readerstudy.studies.models import Design, Generator, Study

DEMO_POOL = "demo-chest"
# The first radiographs of the generator's training archive: enough for the demo studies,
# and rendered in about a minute (the full archive takes several).
DEMO_REAL_IMAGES = 48
DEMO_PEOPLE = [
    # username, role, specialty, years of experience
    ("coordinator", Role.COORDINATOR, Specialty.OTHER, 0),
    ("analyst", Role.ANALYST, Specialty.OTHER, 0),
    ("radiologist", Role.READER, Specialty.RADIOLOGIST, 12),
    ("surgeon", Role.READER, Specialty.ORTHOPAEDIC_SURGEON, 8),
]
DEMO_STUDIES = [
    # name, design, cases, seed
    ("Demo paired study", Design.PAIRED, 12, 20261126),
    ("Demo mixed study", Design.MIXED, 12, 20261127),
]
# Real images the studies draw: every case of the paired study has one, half the mixed study's do, and
# no real image is shown in both studies.
MIN_REAL_IMAGES = 12 + 6
INSTRUCTIONS = (
    "These are simulated chest radiographs rendered from a public CT scan, and images from a "
    "generator trained on them. Read as you would a frontal chest radiograph."
)


class Command(BaseCommand):
    help = "Build the demo archive, generator, studies and accounts, then serve the site."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="build everything and exit")
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address to serve on")
        parser.add_argument(
            "--real-images", type=int, default=DEMO_REAL_IMAGES, metavar="N",
            help=f"render the first N radiographs of the archive (default {DEMO_REAL_IMAGES}; at least "
            f"{MIN_REAL_IMAGES}, what the two studies draw): fewer make the same demo faster, as tests/test_serving.py does",
        )

    def handle(self, no_serve: bool, addr: str, real_images: int, **options):
        if real_images < MIN_REAL_IMAGES:
            raise CommandError(f"--real-images: the demo studies draw {MIN_REAL_IMAGES} real images")
        # The demo reads its studies with the machine reader itself (statistics only, seconds)
        # rather than leaving a model-training job running in a thread of this command.
        settings.MACHINE_READ_AFTER_PREPARE = False
        call_command("migrate", verbosity=0, interactive=False)
        pool = self.build_archive(real_images)
        generator = self.register_generator()
        passwords = self.create_people()
        readers = [User.objects.get(username=name) for name, role, *_ in DEMO_PEOPLE if role == Role.READER]
        coordinator = User.objects.get(username="coordinator")
        for name, design, cases, seed in DEMO_STUDIES:
            study, created = Study.objects.get_or_create(
                name=name, defaults=dict(design=design, pool=pool, case_count=cases, seed=seed, instructions=INSTRUCTIONS,
                                         owner=coordinator)
            )
            if created:
                study.generators.set([generator])
            if study.owner_id is None:  # a demo built before studies had owners
                study.owner = coordinator
                study.save(update_fields=["owner"])
            for reader in readers:
                study.add_reader(reader, coordinator)
            if study.state in (State.DRAFT, State.PREPARING):  # preparing: a build interrupted earlier
                self.stdout.write(f"Preparing {name}: drawing {cases} cases and generating synthetic images…")
                # Through the same lifecycle and job as the console.
                if study.state == State.DRAFT:
                    study.start_preparing(coordinator)
                job = enqueue("prepare_study", study=study, user=coordinator)
                while job.is_active:  # in whatever mode the jobs run (a thread by default): wait for it
                    time.sleep(0.5)
                    job.refresh_from_db()
                study.refresh_from_db()
                if study.state != State.READY:
                    raise CommandError(f"{name}: preparation failed: {job.message}")
            if study.state == State.READY:
                study.open(coordinator)
            if not MachineReading.objects.filter(study=study).exists():
                self.stdout.write(f"Machine reader on {name} (image statistics; `manage.py machine_read` adds the CNNs)…")
                compute_machine_reading(study, learned=False)

        self.stdout.write(self.style.SUCCESS("\nThe demo is ready."))
        self.stdout.write(f"Open http://{addr}/ and log in as one of:")
        for name, role, specialty, _ in DEMO_PEOPLE:
            self.stdout.write(f"  {name:<12} password {passwords[name]:<18} {role.label}" + (f", {specialty.label}" if role == Role.READER else ""))
        self.stdout.write("Passwords are new each time the demo is built.")
        if not no_serve:
            call_command("runserver", addr, use_reloader=False)

    def build_archive(self, count: int) -> Pool:
        from generator.demo import DEMO_RESOLUTION, build_demo_archive

        pool, _ = Pool.objects.get_or_create(name=DEMO_POOL, defaults={"presentation_size": DEMO_RESOLUTION, "bit_depth": 16})
        if not pool.real_images().exists():
            folder = settings.VAR_DIR / "demo" / "archive"
            self.stdout.write(f"Rendering the demo archive into {folder} (simulated from a public CT; no patient data)…")
            paths = build_demo_archive(folder, count=count)
            summary = import_images(folder, pool)
            self.stdout.write(f"Imported {len(summary.imported)} of {len(paths)} rendered radiographs into pool {pool}.")
        return pool

    def register_generator(self) -> Generator:
        from generator.demo import DEMO_CHECKPOINT, DEMO_PRIVACY_SCREEN

        # Looked up in CHECKPOINT_DIRS, so the database holds no absolute path.
        generator, _ = Generator.objects.get_or_create(
            name=DEMO_CHECKPOINT.stem,
            defaults={"kind": Generator.Kind.GAN, "path": DEMO_CHECKPOINT.name, "privacy_screen": DEMO_PRIVACY_SCREEN.name},
        )
        return generator

    def create_people(self) -> dict[str, str]:
        passwords = {}
        for name, role, specialty, years in DEMO_PEOPLE:
            user, _ = User.objects.get_or_create(username=name)
            passwords[name] = secrets.token_urlsafe(9)
            user.set_password(passwords[name])
            # The demo coordinator is an ordinary coordinator: the console needs no staff or superuser rights.
            user.is_staff = user.is_superuser = False
            user.save()
            Profile.objects.update_or_create(user=user, defaults={"role": role, "specialty": specialty, "years_experience": years})
        return passwords
