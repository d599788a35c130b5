"""The site's WSGI application in a process that has also imported torch: the memory baseline
bench_load.py compares a production web worker (which never imports torch) against."""

import torch  # noqa: F401 - imported for its memory, the point of this module

from readerstudy.wsgi import application  # noqa: E402,F401
