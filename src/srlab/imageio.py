"""Reading and writing images safely: clear errors, pixel limits, atomic writes.

Every failure to read an image raises :class:`ImageReadError` whose message
names the file and the reason, so callers that process a batch can report one
line per bad file and carry on.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .color import rgb_to_ycbcr

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "list_images",
    "open_image",
    "read_y",
    "atomic_write",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
# 100 megapixels: a 7680x4320 frame is 33 MP, a bigger input is almost always a mistake
# or a decompression bomb. Raise it with max_pixels (CLI: --max-pixels).
DEFAULT_MAX_PIXELS = 100_000_000


class ImageReadError(ValueError):
    """An input image could not be used; the message names the file and why."""


# Pillow's own bomb guard is a module global (warning above MAX_IMAGE_PIXELS, error
# above twice that), checked at open and again when GIF/TIFF frames are read. While
# one image is opened it is off (our check of the header's size gives the clearer
# message) and while it is decoded it is our limit, so --max-pixels can raise it
# (Pillow's default of 89 MP would otherwise win) and the two guards agree.
_PILLOW_LIMIT_LOCK = threading.Lock()


@contextmanager
def _pillow_limit(max_pixels: int | None):
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in ``folder``, sorted by name, so runs are reproducible.

    Raises:
        FileNotFoundError: the folder does not exist.
        NotADirectoryError: the path is a file.
        ValueError: it holds no image file.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder (expected a folder of images)")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder (expected a folder of images)")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in root.glob(pattern) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"{root}: no images found (expected files ending in {', '.join(IMAGE_EXTENSIONS)})")
    return files


def open_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image, with EXIF orientation applied.

    Animated images give their first frame. Raises :class:`ImageReadError`
    for anything that is not a readable image within ``max_pixels``.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with _pillow_limit(max_pixels), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None
            img = Image.open(path)
            Image.MAX_IMAGE_PIXELS = max_pixels
            with img:
                w, h = img.size
                if w < 1 or h < 1:
                    raise ImageReadError(f"{path}: image has no pixels ({w}x{h})")
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageReadError(
                        f"{path}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,} "
                        "(raise it with --max-pixels if the image is genuine)"
                    )
                img.seek(0)
                img.load()
                info = dict(img.info)
                out = ImageOps.exif_transpose(img)
                out = out.copy() if out is img else out
                out.info.update({k: v for k, v in info.items() if k not in out.info})
                return out
    except ImageReadError:
        raise
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{path}: a frame is over the limit of {max_pixels:,} pixels ({exc}); raise it with --max-pixels if the image is genuine") from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path}: corrupt or truncated image ({exc})") from None


def read_y(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The benchmark's luminance: uint8 ``(H, W)``.

    RGB images give MATLAB's ``rgb2ycbcr`` Y rounded to uint8 levels (as the
    papers' uint8 pipeline did); grayscale images (mode L) are used as Y as
    they are. 16-bit grayscale is reduced to 8 bits.
    """
    img = open_image(path, max_pixels)
    if img.mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.round(np.asarray(img, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float64)
    y = rgb_to_ycbcr(rgb, 255.0)[..., 0]
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``.

    A crash or an exception leaves either the old file or none, never half of
    one, and removes the temporary file. The temporary name ends with the
    target's extension, so format detection by extension still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
