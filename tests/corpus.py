"""A corpus of broken, hostile and unusual image files, generated on the spot.

``make_corpus(folder)`` writes every case into ``folder`` (nothing is copied in
from elsewhere) and returns one :class:`Case` per file, saying whether srlab
should read it (``ok``) or refuse it, and a regular expression the refusal's
message must match. The reliability tests run `srlab upscale`, `srlab eval`
and `srlab features` over it; docs/RELIABILITY.md counts its cases.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["Case", "make_corpus", "png_bomb", "NON_UTF8_NAME"]

# A file name that is not valid UTF-8 (Latin-1 "é" and a stray 0xff byte).
NON_UTF8_NAME = b"caf\xe9-\xff.png"


@dataclass
class Case:
    """One corpus file.

    name: a short label for reports and test ids.
    path: where it is (a str with surrogate escapes for a non-UTF-8 name).
    ok: True if srlab should read it (a correct result), False if it must refuse it.
    reason: regex the one-line refusal must match (``ok=False`` only).
    size: ``(width, height)`` of the upright image srlab should read (``ok=True`` only).
    """

    name: str
    path: Path
    ok: bool
    reason: str = ""
    size: tuple[int, int] | None = None


def _rgb(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth RGB test pattern (noise would make every resize check meaningless)."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = np.stack([xx * 255.0 / max(w - 1, 1), yy * 255.0 / max(h - 1, 1), (xx + yy) * 127.0 / max(w + h - 2, 1)], -1)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A genuine decompression bomb: a valid 1-bit ``side x side`` PNG of zeros.

    20000^2 = 400 megapixels (400 MB once decoded by Pillow) in a file of
    about 50 KB. Written row by row, so making it costs no memory.
    """
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte 0 + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, gray
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))
    return path


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def make_corpus(folder: str | os.PathLike, size: int = 24, unreadable: bool = True) -> list[Case]:
    """Write the corpus into ``folder``; images are ``size`` pixels on a side unless the case says otherwise.

    ``unreadable``: include a file without read permission (useless as root,
    who can read anything; the caller decides).
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    s = size
    cases: list[Case] = []
    rgb = Image.fromarray(_rgb(s, s))

    def ok(name: str, file: str, w: int = s, h: int = s) -> None:
        cases.append(Case(name, root / file, True, size=(w, h)))

    def bad(name: str, file: str, reason: str) -> None:
        cases.append(Case(name, root / file, False, reason))

    # -- broken files -----------------------------------------------------------
    (root / "zero_bytes.png").write_bytes(b"")
    bad("zero bytes", "zero_bytes.png", r"empty file")

    jpeg = _encode(rgb, "JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    bad("truncated JPEG", "truncated.jpg", r"corrupt or truncated")

    png = _encode(rgb, "PNG")
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    bad("truncated PNG", "truncated.png", r"corrupt or truncated")

    (root / "random_bytes.jpg").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    bad("random bytes named .jpg", "random_bytes.jpg", r"not an image")

    (root / "text.png").write_text("this is not a picture\n" * 20)
    bad("text file named .png", "text.png", r"not an image")

    png_bomb(root / "bomb.png")
    bad("decompression bomb (400 MP in 50 KB)", "bomb.png", r"400,000,000 pixels is over the limit|too many pixels")

    (root / "folder.png").mkdir()
    bad("directory named like an image", "folder.png", r"is a folder|not an image|no images")

    # -- unusual but valid --------------------------------------------------------
    Image.fromarray(_rgb(1, 1)).save(root / "one_pixel.png")
    ok("1x1 image", "one_pixel.png", 1, 1)

    Image.fromarray(_rgb(40, 1)).save(root / "one_row.png")
    ok("1xN image (1 row)", "one_row.png", 40, 1)

    Image.fromarray(_rgb(1, 40)).save(root / "one_column.png")
    ok("Nx1 image (1 column)", "one_column.png", 1, 40)

    rgb.convert("CMYK").save(root / "cmyk.jpg", quality=95)
    ok("CMYK JPEG", "cmyk.jpg")

    gray16 = (np.linspace(0, 65535, s * s).reshape(s, s)).astype(np.uint16)
    Image.fromarray(gray16).save(root / "gray16.png")
    ok("16-bit gray PNG", "gray16.png")

    la = Image.merge("LA", (rgb.convert("L"), Image.fromarray(np.full((s, s), 128, np.uint8))))
    la.save(root / "gray_alpha.png")
    ok("LA (gray + alpha) PNG", "gray_alpha.png")

    pal = rgb.quantize(16)
    pal.info["transparency"] = 0
    pal.save(root / "palette_transparent.png", transparency=0)
    ok("P with transparency PNG", "palette_transparent.png")

    # Frames turned by 0, 90, 180 degrees, so which one was read is plain to see.
    frames = [Image.fromarray(np.ascontiguousarray(np.rot90(_rgb(s, s, seed=k), k))).quantize(32) for k in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    ok("animated GIF (first frame)", "animated.gif")

    tall = Image.fromarray(_rgb(s, s + 8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    tall.save(root / "exif_rotated.jpg", exif=exif.tobytes(), quality=95)
    ok("EXIF-rotated JPEG (orientation 6)", "exif_rotated.jpg", s + 8, s)

    # -- hostile names and permissions ---------------------------------------------
    name = os.fsdecode(NON_UTF8_NAME)
    try:
        rgb.save(root / name, format="PNG")
    except (OSError, UnicodeEncodeError):
        pass  # the filesystem refuses such names; the tests skip this case
    else:
        ok("non-UTF-8 file name", name)

    if unreadable:
        rgb.save(root / "no_permission.png")
        os.chmod(root / "no_permission.png", 0)
        bad("file without read permission", "no_permission.png", r"permission denied|cannot read")
    return cases
