"""Hostile imports: every per-file failure is a reason in the summary, nothing is ever half-written.

Every hostile file is generated here (no binary fixtures).
"""

from __future__ import annotations

import errno
import io
import os
import resource
import signal
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from PIL import Image as PILImage
from pydicom.uid import DeflatedExplicitVRLittleEndian

from readerstudy.archive import importing, store
from readerstudy.archive.decoding import Refused, decode
from readerstudy.archive.importing import import_images
from readerstudy.archive.models import Image, Pool
from tests.conftest import smooth_image, write_png16
from tests.test_import import dicom_bytes, gradient

pytestmark = pytest.mark.django_db


def good_folder(folder: Path, count: int, size: int = 48) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_png16(folder / f"good-{i:02d}.png", smooth_image(100 + i, size=size))
    return folder


def skipped(summary) -> dict[str, str]:
    return dict(summary.skipped)


def test_dicom_window_width_zero_and_non_numeric_slope_are_reasons(tmp_path):
    folder = good_folder(tmp_path / "in", 3)
    (folder / "window0.dcm").write_bytes(dicom_bytes(gradient((48, 48)), WindowCenter=2000, WindowWidth=0))
    # pydicom refuses to write a non-numeric DS, so the slope's text is replaced in the written bytes.
    valid = dicom_bytes(gradient((48, 48)), RescaleSlope="2.5", RescaleIntercept="0")
    assert valid.count(b"2.5 ") == 1
    (folder / "slope.dcm").write_bytes(valid.replace(b"2.5 ", b"abc "))
    pool = Pool.objects.create(name="dicoms", presentation_size=32)
    summary = import_images(folder, pool)
    reasons = skipped(summary)
    assert "Window Width 0" in reasons["window0.dcm"]
    assert "Rescale Slope" in reasons["slope.dcm"] or "corrupt DICOM" in reasons["slope.dcm"]
    assert len(summary.imported) == 3


def patched_zip(entries: dict[str, bytes], patch: dict[str, tuple[int | None, int | None]]) -> bytes:
    """A zip whose named members get (general-purpose flag bits, compression method) rewritten in both headers."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    raw = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    central = raw.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<I", raw, central + 16)[0]
    position = cd_offset
    while raw[position:position + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", raw, position + 28)
        name = raw[position + 46:position + 46 + name_length].decode()
        if name in patch:
            flags, method = patch[name]
            local = infos[name].header_offset
            if flags is not None:
                struct.pack_into("<H", raw, position + 8, struct.unpack_from("<H", raw, position + 8)[0] | flags)
                struct.pack_into("<H", raw, local + 6, struct.unpack_from("<H", raw, local + 6)[0] | flags)
            if method is not None:
                struct.pack_into("<H", raw, position + 10, method)
                struct.pack_into("<H", raw, local + 8, method)
        position += 46 + name_length + extra_length + comment_length
    return bytes(raw)


def png16_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray((smooth_image(seed) * 65535).astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_encrypted_and_deflate64_zip_members_are_reasons(tmp_path):
    entries = {f"good-{i}.png": png16_bytes(200 + i) for i in range(3)}
    entries["secret.png"] = png16_bytes(210)
    entries["deflate64.png"] = png16_bytes(211)
    archive = tmp_path / "in.zip"
    archive.write_bytes(patched_zip(entries, {"secret.png": (0x1, None), "deflate64.png": (None, 9)}))
    summary = import_images(archive, Pool.objects.create(name="zipped", presentation_size=32))
    reasons = skipped(summary)
    assert "encrypted" in reasons["secret.png"]
    assert "Deflate64" in reasons["deflate64.png"]
    assert sorted(summary.imported) == ["good-0.png", "good-1.png", "good-2.png"]


def test_a_file_deleted_mid_import_is_a_reason_and_the_rest_are_imported(tmp_path, monkeypatch):
    folder = good_folder(tmp_path / "in", 30)
    real_decode = importing.decode
    calls = []

    def decode_then_delete(data, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            (folder / "good-20.png").unlink()
        return real_decode(data, **kwargs)

    monkeypatch.setattr(importing, "decode", decode_then_delete)
    summary = import_images(folder, Pool.objects.create(name="vanishing", presentation_size=32))
    assert len(summary.imported) == 29
    assert "cannot be read" in skipped(summary)["good-20.png"]


def test_an_unexpected_decoder_error_is_one_files_reason(tmp_path, monkeypatch):
    folder = good_folder(tmp_path / "in", 3)
    real_decode = importing.decode

    def flaky(data, **kwargs):
        if data == (folder / "good-01.png").read_bytes():
            raise ValueError("boom")
        return real_decode(data, **kwargs)

    monkeypatch.setattr(importing, "decode", flaky)
    summary = import_images(folder, Pool.objects.create(name="flaky", presentation_size=32))
    assert len(summary.imported) == 2 and "ValueError: boom" in skipped(summary)["good-01.png"]


def deflated_dicom_bomb(expanded_bytes: int) -> bytes:
    """A deflated-transfer-syntax DICOM whose pixel data inflates to ``expanded_bytes`` of zeros."""
    side = int(np.sqrt(expanded_bytes // 2))
    header = pydicom.dcmread(io.BytesIO(dicom_bytes(gradient((8, 8)))))
    del header.PixelData
    header.Rows = header.Columns = side
    header.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    header.save_as(buffer, enforce_file_format=True)
    written = buffer.getvalue()
    meta_length = struct.unpack_from("<I", written, 132 + 8)[0]
    body_start = 132 + 12 + meta_length
    dataset = zlib.decompress(written[body_start:], -zlib.MAX_WBITS)
    pixel_length = side * side * 2
    element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_length)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [compressor.compress(dataset + element)]
    zeros = bytes(1 << 20)
    for _ in range(pixel_length >> 20):
        parts.append(compressor.compress(zeros))
    parts.append(compressor.compress(bytes(pixel_length & ((1 << 20) - 1))))
    parts.append(compressor.flush())
    return written[:body_start] + b"".join(parts)


def test_a_deflated_dicom_bomb_is_refused_before_it_expands():
    bomb = deflated_dicom_bomb(512 << 20)  # 512 MiB of pixels
    assert len(bomb) < 1 << 20  # in a file of about half a megabyte
    tracemalloc.start()
    try:
        with pytest.raises(Refused, match="too large"):
            decode(bomb, max_pixels=1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak / 2**20:.0f} MiB while refusing"
    # A small deflated DICOM within the limit still decodes.
    small = pydicom.dcmread(io.BytesIO(dicom_bytes(gradient((48, 48)))))
    small.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    small.save_as(buffer, enforce_file_format=True)
    assert decode(buffer.getvalue(), max_pixels=1024 * 1024).shape == (48, 48)


def test_gif_and_bmp_are_refused_with_a_reason():
    pixels = (smooth_image(7) * 255).astype(np.uint8)
    for kind in ("GIF", "BMP"):
        buffer = io.BytesIO()
        PILImage.fromarray(pixels).save(buffer, format=kind)
        with pytest.raises(Refused, match="GIF, BMP and others are not accepted"):
            decode(buffer.getvalue(), max_pixels=10**6)


def test_symlinks_out_of_the_imported_tree_are_refused(tmp_path):
    outside = good_folder(tmp_path / "outside", 1)
    folder = good_folder(tmp_path / "in", 2)
    (folder / "escape.png").symlink_to(outside / "good-00.png")
    (folder / "escape-dir").symlink_to(outside, target_is_directory=True)
    (folder / "inside-link.png").symlink_to(folder / "good-00.png")
    summary = import_images(folder, Pool.objects.create(name="links", presentation_size=32))
    reasons = skipped(summary)
    assert "outside the imported folder" in reasons["escape.png"]
    assert not any(name.startswith("escape-dir") and name not in reasons for name in summary.imported)
    assert sorted(summary.imported) == ["good-00.png", "good-01.png"]  # the inside link is a duplicate


class FileSizeLimit:
    """The process may not write files larger than ``limit`` bytes: as a full disk does, writes fail part-way."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        self.previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.previous = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.previous[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.previous)
        signal.signal(signal.SIGXFSZ, self.previous_handler)


def test_a_full_disk_leaves_no_truncated_png_and_no_row(tmp_path, image_store):
    folder = good_folder(tmp_path / "in", 3, size=96)
    pool = Pool.objects.create(name="full", presentation_size=96)
    with FileSizeLimit(4096), pytest.raises(OSError) as failure:
        import_images(folder, pool)
    assert failure.value.errno == errno.EFBIG
    assert Image.objects.count() == 0
    assert not image_store.exists() or not list(image_store.iterdir())  # no PNG, no temporary file


def test_a_read_only_store_is_a_clear_error_and_keeps_no_pool(tmp_path, monkeypatch, image_store):
    folder = good_folder(tmp_path / "in", 2)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(store, "open", read_only, raising=False)
    with pytest.raises(CommandError, match="cannot write to the image store.*Read-only file system"):
        call_command("import_images", str(folder), "--pool", "ro", "--size", "32")
    assert not Pool.objects.filter(name="ro").exists() and Image.objects.count() == 0
    monkeypatch.undo()
    # Nothing blocks a second run with another size.
    call_command("import_images", str(folder), "--pool", "ro", "--size", "40")
    assert Pool.objects.get(name="ro").images.count() == 2


@pytest.mark.parametrize("name", ["../etc", "a b", "knees/2", "", "x" * 101, "naïve"])
def test_pool_names_are_validated(tmp_path, name):
    folder = good_folder(tmp_path / "in", 1)
    with pytest.raises(CommandError, match="pool name"):
        call_command("import_images", str(folder), "--pool", name, "--size", "32")
    assert not Pool.objects.exists()


@pytest.mark.parametrize("size", ["-256", "0", "100000"])
def test_impossible_sizes_are_a_clear_error(tmp_path, size):
    folder = good_folder(tmp_path / "in", 1)
    with pytest.raises(CommandError, match="presentation size"):
        call_command("import_images", str(folder), "--pool", "sized", "--size", size)
    assert not Pool.objects.exists()


def test_a_missing_image_file_is_a_404_not_a_500(make_study, readers):
    study = make_study("paired", cases=2)
    client = Client()
    client.force_login(readers[0])
    html = client.get(f"/studies/{study.pk}/read/").content.decode()
    import re

    url = re.findall(r'data-src="([^"]+)"', html)[0]
    assert client.get(url).status_code == 200
    for image in Image.objects.all():
        image.delete_file()
    assert client.get(url).status_code == 404
