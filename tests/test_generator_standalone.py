"""generator/ stands alone: the GPU boxes have PyTorch and no Django (bench/device_check.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Importing django (or anything under it) fails in the child process, as on a GPU box.
BLOCK_DJANGO = "import sys; sys.modules['django'] = None\n"


def run_without_django(code: str) -> subprocess.CompletedProcess:
    # No plugin autoloading: pytest-django is not there on a GPU box either.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-c", BLOCK_DJANGO + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_every_generator_module_imports_without_django():
    done = run_without_django(
        "import importlib, pkgutil, generator\n"
        "names = [m.name for m in pkgutil.iter_modules(generator.__path__, 'generator.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 15


def test_generator_tests_collect_without_django():
    done = run_without_django(
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '--collect-only', '-p', 'no:cacheprovider', '-o', 'addopts=',"
        " *sorted(str(p) for p in __import__('pathlib').Path('tests').glob('test_generator_*.py'))]))\n"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "tests collected" in done.stdout
