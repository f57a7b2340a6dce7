"""Where data lives and how a folder of images becomes a list of Y arrays."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..imageio import ImageReadError, list_images, read_y

__all__ = ["DATA_ENV", "data_root", "resolve_data_path", "load_y_images"]

log = logging.getLogger(__name__)

DATA_ENV = "SRLAB_DATA"
# The project's own layout keeps the reference data beside the checkout.
_DEFAULT_ROOTS = (Path("../shared/data"), Path("data"))


def data_root() -> Path | None:
    """The data root: ``$SRLAB_DATA`` if set, else ``../shared/data`` or ``./data`` if present."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    for root in _DEFAULT_ROOTS:
        if root.is_dir():
            return root
    return None


def resolve_data_path(path: str | os.PathLike) -> Path:
    """An existing path as given, else the same path under the data root.

    Raises FileNotFoundError saying where it looked and how to get the data.
    """
    p = Path(path)
    if p.exists():
        return p
    root = data_root()
    if root is not None and (root / p).exists():
        return root / p
    if root is not None:
        where = f"looked in: {p}, {root / p}"
    else:
        # The defaults are relative to the working directory; name them resolved, so a user running
        # from elsewhere sees why nothing was found.
        defaults = " nor ".join(str(r.resolve()) for r in _DEFAULT_ROOTS)
        where = f"looked in: {p}; no data root: ${DATA_ENV} is unset and neither {defaults} exists"
    raise FileNotFoundError(
        f"data folder {str(path)!r} not found ({where}); set ${DATA_ENV} to the data root "
        "or fetch it with `srlab data fetch bsds500 --to DIR`"
    )


def load_y_images(folder: str | os.PathLike, limit: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Y channels (uint8 ``(H, W)``) of the images in ``folder``, sorted by name.

    Unreadable files are logged (one line naming the file) and skipped.
    """
    images, names = [], []
    for path in list_images(resolve_data_path(folder))[:limit]:
        try:
            images.append(read_y(path))
            names.append(path.name)
        except ImageReadError as exc:
            log.error("%s (skipped)", exc)
    if not images:
        raise ValueError(f"{folder}: no readable images")
    return images, names
