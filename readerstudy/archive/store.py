"""Writing files into the image store so that no reader or rebuild ever finds half a file.

A file is written under a temporary name in the same folder, flushed to disk
and only then renamed to its final name (a rename within one file system is
atomic): a full disk, a crash or a kill leaves at most a temporary file that
no row points at, never a truncated PNG under a real token.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.files.storage import Storage


class StoreError(OSError):
    """The image store cannot be written (read-only, full, missing permissions); the message says which."""


def write_atomically(storage: Storage, name: str, data: bytes) -> None:
    """Store ``data`` as ``name`` in a file-system storage, complete or not at all."""
    final = Path(storage.path(name))
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(8)}.partial")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        mode = getattr(storage, "file_permissions_mode", None)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, final)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise StoreError(error.errno, f"cannot write to the image store {final.parent}: {error.strerror or error}") from error
