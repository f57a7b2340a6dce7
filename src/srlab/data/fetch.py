"""Fetch datasets onto a fresh machine: download, verify SHA-256, lay out as srlab expects.

``fetch("bsds500", root)`` downloads the official Berkeley archive (or takes
``source``, a local file or a ``file://``/``https://`` URL), checks its SHA-256
when one is known, and extracts ``BSR/BSDS500/data/images/{train,val,test}/*.jpg``
to ``root/BSDS500/{train,val,test}``. Members are checked so a hostile archive
cannot write outside ``root``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

__all__ = ["DATASETS", "Dataset", "fetch", "sha256_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    url: str
    sha256: str | None  # None: not pinned here; the digest is printed so it can be pinned
    member_prefix: str  # folder inside the archive that holds the split folders
    target: str  # folder under the data root
    splits: tuple[str, ...]


DATASETS = {
    "bsds500": Dataset(
        url="http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
        sha256=None,
        member_prefix="BSR/BSDS500/data/images/",
        target="BSDS500",
        splits=("train", "val", "test"),
    ),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (user-chosen URL)
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(dest, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, disable=None) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                bar.update(len(chunk))


def fetch(name: str, root: str | os.PathLike, source: str | None = None, sha256: str | None = None) -> Path:
    """Make ``root/<dataset>`` from the official archive or ``source``; returns that folder."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    spec = DATASETS[name]
    expected = sha256 or (spec.sha256 if source is None else None)
    root = Path(root)
    target = root / spec.target
    with tempfile.TemporaryDirectory(dir=root if root.exists() else None) as tmp:
        archive = Path(tmp) / "archive"
        src = source or spec.url
        if Path(src).is_file():
            shutil.copyfile(src, archive)
        elif "://" in src:
            try:
                _download(src, archive)
            except OSError as exc:
                raise OSError(f"could not download {src} ({exc}); download it elsewhere and pass --from FILE") from None
        else:
            raise FileNotFoundError(f"{src}: no such archive")
        digest = sha256_of(archive)
        if expected and digest != expected:
            raise ValueError(f"{src}: SHA-256 {digest} does not match the expected {expected}")
        if not expected:
            log.info("SHA-256 of %s: %s (not pinned; compare it with the publisher's)", src, digest)
        try:
            tar = tarfile.open(archive)
        except tarfile.TarError as exc:
            raise ValueError(f"{src}: not a tar archive ({exc})") from None
        staging = Path(tmp) / "out"
        count = 0
        with tar:
            for member in tar.getmembers():
                if not member.isfile() or not member.name.startswith(spec.member_prefix):
                    continue
                rel = Path(member.name[len(spec.member_prefix) :])
                if rel.is_absolute() or ".." in rel.parts or len(rel.parts) != 2 or rel.parts[0] not in spec.splits:
                    continue
                if rel.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                    continue
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as fin, open(dest, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
                count += 1
        if count == 0:
            raise ValueError(f"{src}: no images under {spec.member_prefix}{{{','.join(spec.splits)}}}/ in the archive")
        root.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging), str(target))
    log.info("%d images in %s", count, target)
    return target
