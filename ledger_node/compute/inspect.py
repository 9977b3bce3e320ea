"""Unpack and validate a bundle: runs INSIDE the sandbox (system python, no network, uid 65534).

``python -I -m ledger_node.compute.inspect ARCHIVE DEST OUT``: extracts ARCHIVE into DEST
(plain files and folders only, tarfile's "data" filter), validates it with
``bundle.check_folder`` and writes the manifest to OUT/manifest.json, or the reason it was
refused to OUT/error.txt. The node reads back only those files.
"""
from __future__ import annotations

import sys
import tarfile
from pathlib import Path, PurePosixPath

from ledger_node.compute import bundle


def unpack(archive: Path, dest: Path) -> bundle.Manifest:
    """Extract `archive` into `dest` and validate it; BundleError says why it was refused."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise bundle.BundleError(f"the bundle holds {member.name!r}, a link or special file: a bundle "
                                             "holds plain files and folders only")
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts:
                    raise bundle.BundleError(f"the bundle has an unsafe path {member.name!r}: every name must stay "
                                             "inside the bundle (pack it with `gridmart bundle pack`)")
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise bundle.BundleError(f"the bundle has an unsafe path ({exc}): pack it with `gridmart bundle pack`") \
            from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise bundle.BundleError(f"the bundle is not a readable tar archive ({exc}): pack it with "
                                 "`gridmart bundle pack`") from None
    return bundle.check_folder(dest)


def main(archive: str, dest: str, out: str) -> int:
    try:
        manifest = unpack(Path(archive), Path(dest))
    except bundle.BundleError as exc:
        Path(out, "error.txt").write_text(str(exc))
        return 1
    Path(out, "manifest.json").write_text(manifest.model_dump_json(by_alias=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
