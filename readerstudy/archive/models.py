from __future__ import annotations

import secrets

import numpy as np
from django.core.files.storage import storages
from django.db import models

from readerstudy.archive import encoding
from readerstudy.archive.store import write_atomically


def new_token() -> str:
    # 192 random bits: image URLs cannot be guessed or enumerated.
    return secrets.token_urlsafe(24)


class Source(models.TextChoices):
    REAL = "real", "Real"
    SYNTHETIC = "synthetic", "Synthetic"


class Pool(models.Model):
    """A named collection of presentation images sharing one size and bit depth.

    Real radiographs are imported into a pool; synthetic images made for a
    study on that pool are stored in it too, through the same encoder.
    """

    name = models.SlugField(max_length=100, unique=True)
    presentation_size = models.PositiveIntegerField(default=256)
    bit_depth = models.PositiveSmallIntegerField(choices=[(8, "8-bit"), (16, "16-bit")], default=16)
    # The grey-level grid every image of the pool is quantised to (encoding.py), measured at the
    # first import; None for pools imported before the presentation step existed.
    grey_levels = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # How its images were presented (encoding.PRESENTATION_VERSION when created): an older
    # pool keeps its own version, so its studies still rebuild pixel for pixel.
    presentation_version = models.PositiveSmallIntegerField(
        default=encoding.PRESENTATION_VERSION, db_default=encoding.PRESENTATION_VERSION, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def real_images(self) -> models.QuerySet[Image]:
        return self.images.filter(source=Source.REAL)

    def present(self, pixels: np.ndarray) -> np.ndarray:
        return encoding.to_presentation(pixels, self.presentation_size, self.bit_depth, self.grey_levels,
                                        self.presentation_version)

    def present_sample(self, result) -> np.ndarray:
        """A generator's SampleResult as this pool presents it: from version 2 its unclipped output."""
        unclipped = getattr(result, "unclipped", None)
        if self.presentation_version >= 2 and unclipped is not None:
            return self.present(unclipped)
        return self.present(result.pixels)

    @property
    def effective_bits(self) -> float | None:
        return None if self.grey_levels is None else float(np.log2(self.grey_levels))

    def precision_problem(self, squared: np.ndarray, levels_in_window: int) -> str | None:
        """Why a real image would stand out in this pool, or None.

        ``squared`` is its presentation-sized float square (encoding.square) and
        ``levels_in_window`` its own grey levels between the normalisation percentiles
        (encoding.levels_in_window). Every image of a pool is quantised to the pool's
        grid, the fewest levels any of its real images has: an 8-bit source (most of its
        pixels on the 8-bit grid) would drag a 16-bit pool down to 8 bits, so it is
        refused there, and an image coarser than a grid fixed by an earlier import would
        show steps the others do not.
        """
        on_eight_bit_grid = np.abs(squared * 255 - np.rint(squared * 255)) < 1e-4
        if self.bit_depth == 16 and np.mean(on_eight_bit_grid) > 0.5:
            return (
                "8-bit grey levels in a 16-bit pool: under a narrow window their steps would tell this image "
                "from synthetic ones; import 8-bit images into an 8-bit pool (--bit-depth 8)"
            )
        if self.grey_levels is not None and levels_in_window < self.grey_levels:
            return (
                f"{levels_in_window} grey levels, fewer than the {self.grey_levels} of this pool's grid: it would show "
                "coarser steps than every other image; import it into a new pool"
            )
        return None


class Image(models.Model):
    """One presentation image, real or synthetic, as readers receive it.

    Readers only ever see ``token``: the URL /img/<token> says nothing about
    the source, and the stored file is named by the token alone. ``origin``
    (original file name, or the generator provenance) is for coordinators and
    the audit trail only.
    """

    token = models.CharField(max_length=40, unique=True, default=new_token, editable=False)
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="images")
    source = models.CharField(max_length=10, choices=Source.choices)
    pixel_sha256 = models.CharField(max_length=64, db_index=True)
    content_sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bit_depth = models.PositiveSmallIntegerField()
    byte_size = models.PositiveIntegerField()
    origin = models.JSONField(default=dict, blank=True)
    # Synthetic images are cached by how they were made (checkpoint, seed, label, truncation).
    generation_key = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "generation_key"], name="unique_generation_per_pool"),
        ]

    def __str__(self) -> str:
        return f"{self.pool.name}/{self.token[:8]}"

    @property
    def storage_name(self) -> str:
        return Image.stored_name(self.token)

    def read_bytes(self) -> bytes:
        return Image.read_stored(self.token)

    @staticmethod
    def stored_name(token: str) -> str:
        return f"{token}.png"

    @staticmethod
    def read_stored(token: str) -> bytes:
        """The stored PNG of the image with this token: its token alone names the file (no row needed)."""
        with storages["images"].open(Image.stored_name(token), "rb") as handle:
            return handle.read()

    def read_levels(self) -> np.ndarray:
        return encoding.decode_png(self.read_bytes())

    @classmethod
    def build(cls, pool: Pool, levels: np.ndarray, source: str, origin: dict, **fields) -> Image:
        """Encode presentation pixels, store the file and return an unsaved row.

        The file is written first and the row saved by the caller, so a row
        never points at a missing file; an unreferenced file left by a crash
        is harmless.
        """
        data = encoding.encode_png(levels)
        image = cls(
            pool=pool,
            source=source,
            pixel_sha256=encoding.pixel_sha256(levels),
            content_sha256=encoding.hashlib.sha256(data).hexdigest(),
            width=levels.shape[1],
            height=levels.shape[0],
            bit_depth=pool.bit_depth,
            byte_size=len(data),
            origin=origin,
            **fields,
        )
        write_atomically(storages["images"], image.storage_name, data)  # no truncated file, even on a full disk
        return image

    def delete_file(self) -> None:
        storages["images"].delete(self.storage_name)
