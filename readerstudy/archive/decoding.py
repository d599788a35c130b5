"""Decode a radiograph file (DICOM, PNG, JPEG, TIFF) into a float image in [0, 1].

Each refusal raises ``Refused`` with a reason a coordinator can act on; the
importer reports it per file and carries on with the rest.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

DICOM_MAGIC_OFFSET = 128
# Radiograph exports come as these. GIF (a 256-colour palette, possibly animated), BMP, WebP and
# the rest are refused: none is a radiograph archive format, and each is one more decoder to trust.
RASTER_FORMATS = ("PNG", "JPEG", "TIFF")
DEFLATED_TRANSFER_SYNTAX = "1.2.840.10008.1.2.1.99"


class Refused(Exception):
    """The file cannot become a presentation image; the message says why."""


def is_dicom(data: bytes) -> bool:
    return data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM"


def decode(data: bytes, *, max_pixels: int, min_side: int = 1) -> np.ndarray:
    if not data:
        raise Refused("empty file")
    pixels = decode_dicom(data, max_pixels) if is_dicom(data) else decode_raster(data, max_pixels)
    if pixels.size == 0:
        raise Refused("image has no pixels")
    if min(pixels.shape) < min_side:
        raise Refused(
            f"too small: {pixels.shape[1]}x{pixels.shape[0]} is below the presentation size {min_side}"
            " (upscaling would blur it and give it away)"
        )
    if not np.isfinite(pixels).all():
        raise Refused("image contains NaN or infinite values")
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        raise Refused("blank image: every pixel has the same value")
    return pixels.astype(np.float32)


def decode_raster(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than fails) between 1x and 2x its pixel limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=RASTER_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise Refused(f"too large: {width}x{height} pixels exceeds the limit of {max_pixels}")
                if getattr(image, "n_frames", 1) > 1:
                    raise Refused(f"multi-frame image ({image.n_frames} frames): export one frame per file")
                image.load()
                return raster_to_unit(image)
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise Refused(f"too large (decompression bomb): {error}") from error
    except UnidentifiedImageError as error:
        raise Refused("not a recognised image (DICOM, PNG, JPEG or TIFF; GIF, BMP and others are not accepted)") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise Refused(f"corrupt or truncated image: {error}") from error


def raster_to_unit(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("RGB", "RGBA", "P", "LA", "PA", "CMYK", "YCbCr"):
        rgb = np.asarray(image.convert("RGBA" if "A" in mode or mode == "P" else "RGB"))
        if rgb.shape[-1] == 4 and (rgb[..., 3] != 255).any():
            raise Refused("image has transparency: radiographs are opaque grayscale")
        channels = rgb[..., :3].astype(np.int16)
        if (channels[..., 0] != channels[..., 1]).any() or (channels[..., 0] != channels[..., 2]).any():
            raise Refused(f"colour image ({mode}): radiographs must be grayscale")
        return channels[..., 0].astype(np.float32) / 255.0
    if mode == "1":
        raise Refused("1-bit image: not a radiograph")
    if mode == "L":
        return np.asarray(image, dtype=np.float32) / 255.0
    if mode.startswith("I") or mode == "F":
        # 16-bit and float rasters carry no display window: stretch their own range.
        return stretch(np.asarray(image, dtype=np.float64))
    raise Refused(f"unsupported pixel format {mode}")


def stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        raise Refused("blank image: every pixel has the same value")
    return ((values - low) / (high - low)).astype(np.float32)


def decode_dicom(data: bytes, max_pixels: int) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    check_inflated_size(data, max_pixels)
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError, KeyError, TypeError) as error:
        raise Refused(f"corrupt DICOM file: {error}") from error
    if "PixelData" not in dataset:
        raise Refused("DICOM file has no image (no Pixel Data): is it a report or structured document?")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise Refused(f"multi-frame DICOM ({frames} frames) is not supported: export a single frame")
    if int(dataset.get("SamplesPerPixel", 1)) != 1:
        raise Refused(f"colour DICOM ({dataset.get('PhotometricInterpretation')}): radiographs must be grayscale")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise Refused(f"unsupported DICOM photometric interpretation {photometric}")
    try:
        rows, columns = int(dataset.get("Rows", 0)), int(dataset.get("Columns", 0))
    except (TypeError, ValueError) as error:
        raise Refused(f"DICOM Rows/Columns are not numbers: {error}") from error
    if rows * columns > max_pixels:
        raise Refused(f"too large: {columns}x{rows} pixels exceeds the limit of {max_pixels}")
    try:
        stored = dataset.pixel_array
    except Exception as error:  # pydicom raises many kinds for truncated or compressed data
        syntax = dataset.file_meta.get("TransferSyntaxUID", "unknown") if "file_meta" in dataset else "unknown"
        raise Refused(f"DICOM pixel data cannot be decoded (transfer syntax {syntax}): {error}") from error
    try:
        values = apply_modality_lut(stored, dataset)  # Rescale Slope / Intercept or Modality LUT
    except Exception as error:  # a non-numeric slope, a malformed LUT: pydicom raises many kinds
        raise Refused(f"DICOM Rescale Slope/Intercept or Modality LUT is invalid: {error}") from error
    if "WindowCenter" in dataset and "VOILUTSequence" not in dataset:
        check_window(dataset)
    if "WindowCenter" in dataset or "VOILUTSequence" in dataset:
        try:
            values = apply_voi_lut(values, dataset, index=0)
        except Exception as error:
            raise Refused(f"DICOM window (VOI LUT) is invalid: {error}") from error
    unit = stretch(np.asarray(values, dtype=np.float64))
    if photometric == "MONOCHROME1":  # higher values are darker: invert so bone is bright
        unit = 1.0 - unit
    return unit


def check_window(dataset) -> None:
    """Window Center/Width as DICOM requires (width at least 1), else Refused naming them."""
    try:
        center = dataset.WindowCenter
        width = dataset.WindowWidth
        centers = [center] if isinstance(center, (str, int, float)) else list(center)
        widths = [width] if isinstance(width, (str, int, float)) else list(width)
        first_center, first_width = float(centers[0]), float(widths[0])
    except Exception as error:
        raise Refused(f"DICOM Window Center/Width is missing or not a number: {error}") from error
    if not (np.isfinite(first_center) and np.isfinite(first_width)) or first_width < 1:
        raise Refused(f"DICOM Window Width {first_width:g} is invalid (it must be at least 1)")


def check_inflated_size(data: bytes, max_pixels: int) -> None:
    """Refuse a deflated DICOM that inflates beyond what ``max_pixels`` 16-bit pixels need, without inflating it all.

    A deflated-transfer-syntax file is compressed as a whole: a 1 MiB file can
    hold gigabytes of zeros, and pydicom inflates it into memory before any
    header can be checked. So it is inflated here first, in bounded steps.
    """
    import zlib

    from pydicom.filereader import _read_file_meta_info, read_preamble

    stream = io.BytesIO(data)
    try:
        read_preamble(stream, False)
        meta = _read_file_meta_info(stream)
    except Exception as error:
        raise Refused(f"corrupt DICOM file meta information: {error}") from error
    if str(meta.get("TransferSyntaxUID", "")) != DEFLATED_TRANSFER_SYNTAX:
        return
    limit = 2 * max_pixels + (1 << 20)  # one 16-bit frame of the largest image allowed, plus its header
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = data[stream.tell():]
    inflated = 0
    try:
        while True:
            wanted = min(1 << 20, limit + 1 - inflated)  # never 0: 0 would mean "no limit"
            out = inflater.decompress(pending, wanted)
            inflated += len(out)
            if inflated > limit:
                raise Refused(
                    f"too large: the deflated DICOM expands beyond {limit} bytes "
                    f"({max_pixels} pixels at 16 bits); refused before expanding it"
                )
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and len(out) < wanted):
                break
    except zlib.error as error:
        raise Refused(f"corrupt deflated DICOM: {error}") from error
