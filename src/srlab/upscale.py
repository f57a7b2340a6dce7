"""Upscaling real images: colour as the papers did it, any size, files in and out.

The networks were trained on the BT.601 Y channel, so a colour image goes
through them the way the papers' demos did it: RGB -> YCbCr, Y through the
network, Cb and Cr upscaled with the MATLAB bicubic, back to RGB. Grayscale
images are mapped onto the same studio-swing Y scale, so a gray image and the
same image stored as RGB give the same result. An alpha channel is upscaled with
the bicubic. Everything runs tile by tile (:mod:`srlab.tiling`) and each tile is
quantised straight into the output array, so memory stays bounded: the LR
input as float32, the output in its own dtype, and one tile's activations.

Pixel values: uint8 images use [0, 255], uint16 [0, 65535], float [0, 1].
"""

from __future__ import annotations

import glob
import logging
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image
from torch import nn

from .color import rgb_to_ycbcr, ycbcr_to_rgb
from .device import resolve_device
from .ensemble import SelfEnsemble
from .imageio import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageReadError, atomic_write, open_image
from .imresize import imresize
from .inference import prepare, run
from .pretrained import resolve_model
from .tiling import DEFAULT_TILE, Tile, count_tiles, receptive_margin, tiled_apply

__all__ = [
    "MODES",
    "FORMATS",
    "Upscaler",
    "load_upscaler",
    "upscale",
    "read_image",
    "write_image",
    "collect_inputs",
    "output_path",
]

log = logging.getLogger(__name__)

MODES = ("sr", "restore")
FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
_FORMAT_OF_SUFFIX = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp"}
# Y of BT.601 studio swing: black is 16/255 and white 235/255.
_Y_BLACK, _Y_SPAN = 16.0 / 255.0, 219.0 / 255.0


def _bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    return x if scale == 1 else imresize(x, float(scale))


class Upscaler:
    """A model (or the bicubic) applied to whole images, tile by tile.

    Args:
        model: an srlab model mapping ``(N, 1, h, w)`` Y (or ``(N, 3, h, w)`` RGB
            when its ``channels`` is 3) in [0, 1] to ``scale`` times the size;
            for ``mode="restore"`` a scale-1 model.
        scale: the zoom factor of the result.
        mode: ``"sr"``: the model upscales; ``"restore"``: MATLAB bicubic by
            ``scale`` first, then the scale-1 model restores the detail (the
            reference experiment's setting).
        tile: tile size in LR pixels; ``None`` = :data:`srlab.tiling.DEFAULT_TILE`,
            ``0`` = the whole image in one pass.
        device: where the model runs; tiles move there and back.
        self_ensemble: average the model over the 8 flips and rotations of
            each tile (:class:`srlab.ensemble.SelfEnsemble`): 8 network passes,
            0.07-0.23 dB higher PSNR for the shipped weights (docs/RESULTS.md).
        precision: ``"fp32"`` (exact) or ``"bf16"``: the network in bfloat16, about 3x
            faster for SRCNN on CPUs with AMX or AVX512-BF16 at a small PSNR cost
            (:func:`srlab.inference.prepare`, docs/SPEED.md).
    """

    def __init__(
        self,
        model: nn.Module,
        scale: int,
        mode: str = "sr",
        tile: int | None = None,
        device: str | torch.device = "cpu",
        self_ensemble: bool = False,
        precision: str = "fp32",
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        model_scale = getattr(model, "scale", None)
        expected = 1 if mode == "restore" else scale
        if model_scale != expected:
            what = "restore mode needs a scale-1 model" if mode == "restore" else f"--scale {scale} needs a x{scale} model"
            raise ValueError(f"model is x{model_scale}, but {what}")
        if tile is not None and tile < 0:
            raise ValueError(f"tile must be >= 0 (0 = no tiling), got {tile}")
        device = resolve_device(device)
        model = model.to(device)
        self.model = prepare(model, precision=precision)
        if self_ensemble:
            self.model = SelfEnsemble(self.model)
        self.precision = precision
        # bfloat16 kernels smear a NaN probe wider than the network can see (FSRCNN's
        # margin would grow from 9 to 15 LR pixels); the receptive field does not depend
        # on the dtype, so a float32 twin measures it (see margin()).
        self._exact_twin = (lambda: Upscaler(model, scale, mode, tile, device, self_ensemble)) if precision != "fp32" else None
        self.scale = scale
        self.mode = mode
        self.tile = DEFAULT_TILE if tile is None else tile
        self.device = device
        self.model_channels = int(getattr(model, "hparams", {}).get("channels", 1))
        if self.model_channels not in (1, 3):
            raise ValueError(f"models with {self.model_channels} channels are not supported (1 = Y, 3 = RGB)")
        self._margins: dict[int, int] = {}

    # -- the per-tile function -------------------------------------------------
    def _net(self, x: torch.Tensor) -> torch.Tensor:
        """The network's part: ``(1, c, h, w)`` -> ``(1, c, s*h, s*w)``."""
        if self.mode == "restore":
            x = _bicubic(x, self.scale)
        return run(self.model, x)

    def _luma(self, y: torch.Tensor) -> torch.Tensor:
        if self.model_channels == 3:
            return self._net(y.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        return self._net(y)

    def tile_function(self, channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """``(1, channels, h, w)`` in [0, 1] -> ``(1, channels, s*h, s*w)`` in [0, 1] float32.

        ``channels``: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
        """
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"images need 1, 2, 3 or 4 channels (gray, gray+alpha, RGB, RGBA), got {channels}")
        colour = channels >= 3
        n_colour = 3 if colour else 1

        def fn(x: torch.Tensor) -> torch.Tensor:
            x = x.float()
            pix, alpha = x[:, :n_colour], x[:, n_colour:]
            if colour and self.model_channels == 3:
                out = self._net(pix)
            elif colour:
                ycc = rgb_to_ycbcr(pix, 1.0)
                y = self._luma(ycc[:, :1]).clamp(0, 1)
                out = ycbcr_to_rgb(torch.cat([y, _bicubic(ycc[:, 1:], self.scale)], dim=1), 1.0)
            else:
                # Put gray on the studio-swing Y scale the networks were trained on.
                y = self._luma(_Y_BLACK + _Y_SPAN * pix).clamp(0, 1)
                out = (y - _Y_BLACK) / _Y_SPAN
            if alpha.shape[1]:
                out = torch.cat([out, _bicubic(alpha, self.scale)], dim=1)
            return out.clamp(0, 1)

        return fn

    def margin(self, channels: int) -> int:
        """The exact tiling margin for images with ``channels`` channels (measured once)."""
        if channels not in self._margins:
            if self._exact_twin is not None:
                self._margins[channels] = self._exact_twin().margin(channels)
            else:
                self._margins[channels] = receptive_margin(self.tile_function(channels), self.scale, channels, device=self.device)
        return self._margins[channels]

    # -- arrays ----------------------------------------------------------------
    def pixels(self, pixels: np.ndarray, progress: Callable[[Iterable[Tile], int], Iterable[Tile]] | None = None, out_dtype=None) -> np.ndarray:
        """Upscale ``(H, W)`` or ``(H, W, C)`` pixels (C = 1..4); returns the same layout.

        uint8/uint16 stay uint8/uint16 (rounded); float input is taken as [0, 1]
        and comes back in its dtype, clipped to [0, 1]. ``out_dtype`` (uint8)
        lets 16-bit input be written as 8 bits without a second full-size array.
        """
        arr = np.asarray(pixels)
        squeeze = arr.ndim == 2
        if squeeze:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"expected pixels (H, W) or (H, W, C) with C in 1..4, got shape {np.asarray(pixels).shape}")
        h, w, c = arr.shape
        in_max = _max_value(arr.dtype)
        out_dtype = np.dtype(out_dtype or arr.dtype)
        out_max = _max_value(out_dtype)
        chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
        lr = torch.from_numpy(chw if chw.flags.writeable else chw.copy()).unsqueeze(0)
        lr = lr.float() / in_max if in_max != 1.0 else lr.float()
        out = np.empty((h * self.scale, w * self.scale, c), dtype=out_dtype)
        s = self.scale

        def sink(t: Tile, core: torch.Tensor) -> None:
            block = core[0].permute(1, 2, 0).numpy()
            if out_max != 1.0:
                block = np.rint(block * out_max)
            out[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = block

        tiled_apply(self.tile_function(c), lr, s, self.tile, self.margin(c), sink=sink, progress=progress, device=self.device)
        return out[:, :, 0] if squeeze else out

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale a channels-first tensor ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)``; same dtype and device back."""
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"expected a tensor (H, W), (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
        if x.dtype not in (torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise TypeError(f"expected a uint8, uint16 or float tensor, got {x.dtype}")
        batch = x if x.ndim == 4 else x.unsqueeze(0) if x.ndim == 3 else x[None, None]
        low_float = batch.dtype in (torch.float16, torch.bfloat16)
        results = []
        for img in batch:
            arr = img.detach().cpu()
            arr = (arr.float() if low_float else arr).permute(1, 2, 0).numpy()
            up = torch.from_numpy(self.pixels(arr)).permute(2, 0, 1)
            results.append(up.to(dtype=x.dtype, device=x.device))
        out = torch.stack(results)
        return out if x.ndim == 4 else out[0] if x.ndim == 3 else out[0, 0]

    # -- PIL images --------------------------------------------------------------
    def pil(self, img: Image.Image, progress=None) -> Image.Image:
        """Upscale a PIL image; metadata (ICC, EXIF minus orientation, dpi x scale) goes to ``.info``."""
        arr, mode = pil_to_array(img)
        up = self.pixels(arr, progress)
        out = Image.fromarray(up[:, :, 0] if up.shape[2] == 1 else up)
        out.info.update(scaled_metadata(img, self.scale, out.size))
        return out


def _max_value(dtype) -> float:
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise TypeError(f"expected uint8, uint16 or float pixels, got {dtype}")


def pil_to_array(img: Image.Image) -> tuple[np.ndarray, str]:
    """``(pixels (H, W, C), mode of the result)``; palette and exotic modes are converted.

    L, LA, RGB, RGBA stay; P/PA become RGB or RGBA (RGBA when transparent);
    16-bit gray (I;16*, I) becomes uint16 gray; 1 becomes L; CMYK, YCbCr, HSV,
    LAB become RGB; F (float) is taken as [0, 1].
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.clip(np.asarray(img, dtype=np.int64), 0, 65535).astype(np.uint16)
        return arr[:, :, None], "I;16"
    if mode == "F":
        return np.asarray(img, dtype=np.float32)[:, :, None], "F"
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in mode else "RGB")
    arr = np.asarray(img, dtype=np.uint8)
    return (arr[:, :, None] if arr.ndim == 2 else arr), img.mode


def scaled_metadata(img: Image.Image, scale: int, new_size: tuple[int, int]) -> dict:
    """``info`` for the upscaled image: ICC profile as is, EXIF without orientation
    (already applied) and with resolution/pixel size updated, dpi times ``scale``
    (so the printed size stays the same)."""
    info: dict = {}
    if img.info.get("icc_profile"):
        info["icc_profile"] = img.info["icc_profile"]
    dpi = img.info.get("dpi")
    if dpi:
        info["dpi"] = tuple(float(d) * scale for d in dpi)
    exif = img.getexif()
    if len(exif):
        exif.pop(0x0112, None)  # orientation: the pixels are already upright
        for tag in (0x011A, 0x011B):  # X/YResolution follow the dpi
            if tag in exif:
                try:
                    exif[tag] = float(exif[tag]) * scale
                except (TypeError, ValueError, ZeroDivisionError):
                    exif.pop(tag)
        sub = exif.get_ifd(0x8769)
        for tag, value in ((0xA002, new_size[0]), (0xA003, new_size[1])):  # PixelX/YDimension
            if tag in sub:
                sub[tag] = value
        info["exif"] = exif.tobytes()
    return info


# -- files -------------------------------------------------------------------------


def _png_header(path: Path) -> tuple[int, int] | None:
    """``(bit depth, colour type)`` of a PNG file, else None."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return head[24], head[25]


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to ``(H, W, C)`` pixels, as ``ImageOps.exif_transpose``."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def read_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, Image.Image]:
    """``(pixels (H, W, C), decoded PIL image)`` of an image file, upright.

    Pillow reads 16-bit colour PNGs as 8 bits; those are read with OpenCV when
    it is installed (``pip install srlab[opencv]``) so the 16 bits survive.
    Raises :class:`~srlab.imageio.ImageReadError` naming the file.
    """
    path = Path(path)
    img = open_image(path, max_pixels)
    arr, _ = pil_to_array(img)
    header = _png_header(path)
    if header is not None and header[0] == 16 and header[1] in (2, 6):
        try:
            import cv2
        except ImportError:
            log.warning("%s: 16-bit colour PNG read as 8 bits (install opencv-python-headless to keep 16 bits)", path)
            return arr, img
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None or raw.dtype != np.uint16 or raw.ndim != 3:
            raise ImageReadError(f"{path}: corrupt 16-bit PNG (OpenCV could not decode it)")
        raw = raw[:, :, [2, 1, 0, 3][: raw.shape[2]]]  # BGR(A) -> RGB(A)
        with Image.open(path) as probe:
            orientation = probe.getexif().get(0x0112, 1)
        arr = _orient(raw, orientation)
    return arr, img


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png16_bytes(arr: np.ndarray, info: dict) -> bytes:
    """A 16-bit RGB(A) PNG (OpenCV encodes, the metadata chunks are added here)."""
    import cv2

    ok, buf = cv2.imencode(".png", arr[:, :, [2, 1, 0, 3][: arr.shape[2]]])
    if not ok:
        raise OSError("OpenCV could not encode the 16-bit PNG")
    data = buf.tobytes()
    extra = b""
    if info.get("icc_profile"):
        extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(info["icc_profile"]))
    if info.get("dpi"):
        extra += _png_chunk(b"pHYs", struct.pack(">IIB", *(int(round(d / 0.0254)) for d in info["dpi"]), 1))
    if info.get("exif"):
        exif = info["exif"]
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    end_of_ihdr = 8 + 25
    return data[:end_of_ihdr] + extra + data[end_of_ihdr:]


def write_image(path: str | os.PathLike, pixels: np.ndarray, info: dict, fmt: str, quality: int = 95) -> Path:
    """Write ``pixels`` atomically as ``fmt`` (png, jpg, webp), with ``info``'s metadata.

    ``pixels``: ``(H, W[, C])`` uint8, uint16 or float in [0, 1] (written as
    16 bits). PNG keeps 16 bits (gray, RGB, RGBA; gray + alpha only as 8 bits,
    Pillow has no 16-bit LA); JPEG and WebP cannot, so 16-bit pixels are written
    as 8 bits there. JPEG has no alpha channel: an image with one is refused
    (ValueError) rather than silently flattened.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    arr = pixels if pixels.ndim == 3 else pixels[:, :, None]
    channels = arr.shape[2]
    if fmt == "jpg" and channels in (2, 4):
        raise ValueError(f"{path}: has an alpha channel, which JPEG cannot store; use --format png or webp")
    if arr.dtype == np.uint16 and fmt == "png" and channels >= 3:
        data = _png16_bytes(arr, info)
        return atomic_write(path, lambda tmp: tmp.write_bytes(data))
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.rint(np.clip(arr, 0, 1) * 65535).astype(np.uint16)
    if arr.dtype == np.uint16 and (fmt != "png" or channels == 2):
        arr = np.rint(arr / 257.0).astype(np.uint8)
    img = Image.fromarray(arr[:, :, 0] if channels == 1 else arr)
    if fmt == "webp" and img.mode in ("L", "LA"):
        img = img.convert("RGBA" if img.mode == "LA" else "RGB")
    kwargs: dict = {}
    if info.get("icc_profile"):
        kwargs["icc_profile"] = info["icc_profile"]
    if info.get("exif"):
        kwargs["exif"] = info["exif"]
    if info.get("dpi") and fmt != "webp":
        kwargs["dpi"] = info["dpi"]
    if fmt in ("jpg", "webp"):
        kwargs["quality"] = quality
    pil_format = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[fmt]
    return atomic_write(path, lambda tmp: img.save(tmp, format=pil_format, **kwargs))


def collect_inputs(inputs: Iterable[str | os.PathLike], recursive: bool = False) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders and glob patterns into ``(file, relative output stem dir)``.

    Returns ``(found, problems)``: ``found`` pairs each file with the sub-folder
    its output goes to (the path below a given folder, so that ``--recursive``
    keeps same-named files apart); ``problems`` are one-line messages for inputs
    that matched nothing. Duplicates are dropped.
    """
    found: list[tuple[Path, Path]] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, rel_dir: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, rel_dir))

    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                problems.append(f"{path}: no images in this folder" + ("" if recursive else " (use --recursive for sub-folders)"))
            for f in files:
                add(f, f.parent.relative_to(path))
        elif path.exists() or path.is_symlink():
            add(path, Path("."))
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=recursive))
            files = [m for m in matches if m.is_file()]
            if not files:
                problems.append(f"{text}: no file matches this pattern")
            for f in files:
                add(f, Path("."))
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems


def output_path(src: Path, out_dir: Path, rel_dir: Path, label: str, scale: int, fmt: str | None) -> Path:
    """``OUT/REL/<stem>_<label>_x<scale>.<ext>``; ``fmt=None`` keeps png/jpg/webp inputs' format, else png."""
    fmt = fmt or _FORMAT_OF_SUFFIX.get(src.suffix.lower(), "png")
    return out_dir / rel_dir / f"{src.stem}_{label}_x{scale}{FORMATS[fmt]}"


def format_of(path: Path) -> str:
    return _FORMAT_OF_SUFFIX[path.suffix.lower()]


@dataclass
class FileResult:
    """One upscaled file: where it went and the output's megapixels."""

    src: Path
    dst: Path
    megapixels: float


def upscale_file(upscaler: Upscaler, src: Path, dst: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS, progress_for: Callable | None = None) -> FileResult:
    """Read ``src``, upscale, write ``dst`` atomically in the format its suffix names.

    ``progress_for(n_tiles)`` may return a tile-progress wrapper (or None).
    Any failure raises, naming the file; no partial output is left.
    """
    arr, img = read_image(src, max_pixels)
    fmt = format_of(dst)
    if fmt == "jpg" and arr.shape[2] in (2, 4):
        raise ValueError(f"{src}: has an alpha channel, which JPEG cannot store; use --format png or webp")
    h, w = arr.shape[:2]
    progress = progress_for(count_tiles(h, w, upscaler.tile)) if progress_for else None
    out_dtype = np.uint8 if (arr.dtype == np.uint16 and fmt != "png") else None
    up = upscaler.pixels(arr, progress, out_dtype=out_dtype)
    info = scaled_metadata(img, upscaler.scale, (up.shape[1], up.shape[0]))
    write_image(dst, up, info, fmt)
    return FileResult(src, dst, up.shape[0] * up.shape[1] / 1e6)


# -- the Python API ------------------------------------------------------------------


def load_upscaler(
    model: str | nn.Module = "fsrcnn",
    scale: int = 3,
    weights: str | os.PathLike | None = None,
    mode: str = "sr",
    tile: int | None = None,
    device: str | torch.device = "cpu",
    self_ensemble: bool = False,
    precision: str = "fp32",
) -> Upscaler:
    """An :class:`Upscaler` from a model name (shipped weights), a checkpoint path or a module.

    In ``restore`` mode the model is loaded at scale 1. Missing shipped weights
    raise ValueError (never a silent fallback to random weights).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(model, nn.Module) and weights is None:
        net = model
    else:
        net = resolve_model(str(model), 1 if mode == "restore" else scale, weights)
    return Upscaler(net, scale, mode, tile, device, self_ensemble, precision)


def model_label(model: str | nn.Module, weights: str | os.PathLike | None = None, self_ensemble: bool = False) -> str:
    """The name used in output file names and tables: the checkpoint's stem, or the
    model name; with ``self_ensemble`` a "+" is appended, as EDSR named its "EDSR+"."""
    if weights is not None:
        label = Path(weights).with_suffix("").name
    elif isinstance(model, nn.Module):
        label = str(getattr(model, "registry_name", type(model).__name__.lower()))
    elif model.endswith((".safetensors", ".json")) or os.sep in model:
        label = Path(model).with_suffix("").name
    else:
        label = model
    return label + "+" if self_ensemble else label


def upscale(
    image,
    scale: int = 3,
    model: str | nn.Module = "fsrcnn",
    tile: int | None = None,
    *,
    weights: str | os.PathLike | None = None,
    mode: str = "sr",
    device: str | torch.device = "cpu",
    self_ensemble: bool = False,
    precision: str = "fp32",
):
    """Upscale one image by ``scale`` and return it as the same kind of object.

    Args:
        image: a PIL image (any mode; palette and exotic modes are converted,
            16-bit gray stays 16-bit); a numpy array ``(H, W)`` or ``(H, W, C)``
            with C = 1 (gray), 2 (gray + alpha), 3 (RGB), 4 (RGBA), uint8,
            uint16 or float in [0, 1]; or a torch tensor ``(H, W)``,
            ``(C, H, W)`` or ``(N, C, H, W)`` (channels first), same dtypes.
        scale: integer zoom factor.
        model: registered name (shipped weights), checkpoint path, or an srlab model.
        tile: tile size in LR pixels (None: the default, 0: no tiling).
        weights: a checkpoint to use instead of the shipped weights.
        mode: ``"sr"`` or ``"restore"`` (bicubic, then a scale-1 model).
        self_ensemble: average over the 8 flips and rotations (8 network passes per tile).
        precision: ``"fp32"`` or ``"bf16"`` (not exact; faster for SRCNN on CPUs with native bfloat16).

    Returns:
        PIL in -> PIL out (with ``info`` carrying ICC/EXIF/dpi), numpy -> numpy
        of the same dtype and layout, tensor -> tensor of the same dtype and
        device; all ``scale`` times larger.
    """
    up = load_upscaler(model, scale, weights, mode, tile, device, self_ensemble, precision)
    if isinstance(image, Image.Image):
        return up.pil(image)
    if isinstance(image, np.ndarray):
        return up.pixels(image)
    if isinstance(image, torch.Tensor):
        return up.tensor(image)
    raise TypeError(f"upscale expects a PIL image, numpy array or torch tensor, got {type(image).__name__}")


def megapixels_per_second(megapixels: float, seconds: float) -> float:
    return megapixels / seconds if seconds > 0 else math.inf
