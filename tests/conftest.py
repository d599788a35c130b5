"""Shared fixtures: an isolated image store, a tiny generator, a pool of real images, studies.

Django is imported only inside the fixtures that need it: the GPU boxes run the generator
tests with PyTorch alone (bench/device_check.sh), with this file but without Django.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage


TINY_SIZE = 32


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file, as a deployed SQLite is, not pytest-django's in-memory one.

    The in-memory database's shared cache answers "database table is locked" at once when a second
    connection writes (a job's thread beside the live server's); a file with the settings' WAL and
    busy timeout waits its turn instead, so the thread-mode browser tests run on SQLite too. The file
    is in this session's own temporary folder, so parallel sessions never share it.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and not database.get("TEST", {}).get("NAME"):
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(autouse=True)
def image_store(request, tmp_path):
    """Every test writes presentation images into its own folder."""
    if not request.config.pluginmanager.hasplugin("django"):
        return None  # generator tests on a box without Django
    settings = request.getfixturevalue("settings")
    store = tmp_path / "images"
    settings.STORAGES = {**settings.STORAGES, "images": {**settings.STORAGES["images"], "OPTIONS": {"location": store}}}
    return store


@pytest.fixture(autouse=True)
def inline_jobs(request):
    """Background jobs run in the test's own thread and transaction unless a test asks otherwise."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    settings = request.getfixturevalue("settings")
    settings.JOBS_MODE = "inline"
    settings.MACHINE_READ_AFTER_PREPARE = False  # trains models: tests/test_jobs.py asks for it


@pytest.fixture(scope="module")
def one_torch_thread():
    """Heavy generator tests run on one thread: two contended threads on two cores are several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 32x32 generator: real weights, seconds to make."""
    from generator.checkpoints import save_checkpoint
    from generator.config import GeneratorConfig
    from generator.networks import Generator

    config = GeneratorConfig(resolution=TINY_SIZE, latent_dim=16, base_width=4, max_width=16)
    torch.manual_seed(0)
    weights = Generator(config).state_dict()
    return save_checkpoint(tmp_path_factory.mktemp("checkpoints") / "tiny.safetensors", config, weights)


def smooth_image(seed: int, size: int = 48) -> np.ndarray:
    """A random smooth grayscale image in [0, 1], distinct per seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((6, 6)).astype(np.float32)
    image = PILImage.fromarray(coarse).resize((size, size), PILImage.Resampling.BICUBIC)
    pixels = np.asarray(image)
    return (pixels - pixels.min()) / (pixels.max() - pixels.min())


def write_png16(path: Path, pixels: np.ndarray) -> Path:
    PILImage.fromarray((pixels * 65535).astype(np.uint16)).save(path)
    return path


@pytest.fixture
def real_folder(tmp_path) -> Path:
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(24):
        write_png16(folder / f"img-{i:02d}.png", smooth_image(i))
    return folder


@pytest.fixture
def pool(db, real_folder):
    from readerstudy.archive.importing import import_images
    from readerstudy.archive.models import Pool

    pool = Pool.objects.create(name="tiny", presentation_size=TINY_SIZE, bit_depth=16)
    summary = import_images(real_folder, pool)
    assert len(summary.imported) == 24
    return pool


@pytest.fixture
def checkpoint(db, tiny_checkpoint):
    from readerstudy.studies.models import Generator

    return Generator.objects.create(name="tiny", path=str(tiny_checkpoint))


def make_user(username: str, role: str = "reader", specialty: str = "radiologist", years: int = 5) -> User:
    from django.contrib.auth.models import User

    from readerstudy.accounts.models import Profile

    user = User.objects.create_user(username, password="pw-" + username)
    Profile.objects.create(user=user, role=role, specialty=specialty, years_experience=years)
    return user


@pytest.fixture
def readers(db) -> list[User]:
    return [make_user("rad", specialty="radiologist"), make_user("ortho", specialty="orthopaedic_surgeon")]


@pytest.fixture
def make_study(pool, checkpoint, readers):
    from readerstudy.studies.generation import prepare
    from readerstudy.studies.models import Study

    def make(design: str = "paired", cases: int = 10, seed: int = 1234, **fields) -> Study:
        study = Study.objects.create(
            name=f"{design}-{seed}", design=design, pool=pool, case_count=cases, seed=seed, is_open=True, **fields
        )
        study.generators.set([checkpoint])
        prepare(study)
        for reader in readers:
            study.assign(reader)
        return study

    return make
