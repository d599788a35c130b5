"""A site in its own folder, for tests that run it in other processes (Celery workers, gunicorn).

pytest-django's test database lives inside the test process (in memory on SQLite), where a
worker or web server started as a subprocess cannot see it. These tests instead give the
site a SQLite file, an image store and a var/ folder of its own in a temporary folder, pass
them to every process through the environment (the same variables a deployment sets), and
read the outcome back from the file.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class SiteProcesses:
    def __init__(self, folder: Path, migrated: Path | None = None, **env: str):
        self.folder = folder
        self.database = folder / "site.sqlite3"
        folder.mkdir(parents=True, exist_ok=True)
        if migrated:
            shutil.copy(migrated, self.database)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "readerstudy.settings",
            "DATABASE_URL": f"sqlite:///{self.database}",
            "READERSTUDY_VAR_DIR": str(folder / "var"),
            "IMAGE_STORE_DIR": str(folder / "images"),
            "SECRET_KEY": "test-" + uuid.uuid4().hex,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        for name in ("JOBS_MODE", "DATABASE_URL_TEST"):
            if name not in env:
                self.env.pop(name, None)
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def shell(self, code: str, timeout: float = 300) -> str:
        return self.manage("shell", "--verbosity", "0", "-c", code, timeout=timeout).strip()

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.database, timeout=20) as db:
            return db.execute(sql, params).fetchall()

    def start(self, *command: str, log: str) -> subprocess.Popen:
        """Start a long-running process in its own process group (so it can be killed whole)."""
        out = open(self.folder / log, "ab")
        process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.folder / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def migrated_database(folder: Path) -> Path:
    """An empty, migrated SQLite file to copy for each test (migrating takes seconds)."""
    site = SiteProcesses(folder)
    site.manage("migrate", "--verbosity", "0")
    return site.database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
