"""``srlab data``: get datasets onto a fresh machine."""

from __future__ import annotations

from ..data.fetch import DATASETS, fetch


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="fetch datasets (BSDS500) with checksum verification")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    f = dsub.add_parser("fetch", help="download (or take a local archive), verify SHA-256, lay out images")
    f.add_argument("name", choices=sorted(DATASETS))
    f.add_argument("--to", required=True, help="data root to write into (then set SRLAB_DATA to it)")
    f.add_argument("--from", dest="source", help="an archive you already have: a file path or URL (file://, https://)")
    f.add_argument("--sha256", help="expected SHA-256 of the archive (default: the official one)")
    p.set_defaults(run=run)


def run(args) -> int:
    out = fetch(args.name, args.to, source=args.source, sha256=args.sha256)
    print(f"{args.name} ready in {out}; use it with SRLAB_DATA={args.to}")
    return 0
