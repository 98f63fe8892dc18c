"""Private files on disk: the SQLite database (with its ``-wal`` and ``-shm`` files), the key
file and the data directory hold users, failure tracebacks and the key of the app secrets,
so only their owner may read them: files 0600, directories 0700.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ("private_database", "private_dir", "secure_data_dir")

logger = logging.getLogger("actors.store")

FILE_MODE = 0o600
DIR_MODE = 0o700
#: Files SQLite keeps next to a database: WAL, shared memory, rollback journal.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    """``chmod mode`` when group or others have any access; a warning when we cannot."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(info.st_mode)
    if not current & 0o077:
        return
    try:
        path.chmod(mode)
    except OSError as exc:
        logger.warning(
            "%s has mode %04o and could not be made private (%s); run: chmod %o %s",
            path, current, exc.strerror, mode, path,
        )  # fmt: skip


def private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) when it is missing; an existing one is left as it is."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)


def private_database(path: Path) -> None:
    """Make the SQLite database ``path`` private before SQLite opens it.

    The file is created empty with mode 0600 when absent (SQLite then creates its ``-wal``
    and ``-shm`` files with the database's mode); an existing database and side files that
    group or others may read are set to 0600. A missing directory is created with 0700.
    """
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    for name in ("", *SQLITE_SIDE_FILES):
        _tighten(path.with_name(path.name + name), FILE_MODE)


def secure_data_dir(path: str | os.PathLike[str]) -> None:
    """Set the service's data directory to 0700 when it exists and is ours.

    It is where the embedded database and the key files live. A directory someone else
    owns, or a sticky one such as ``/tmp``, is shared on purpose and left alone.
    """
    directory = Path(path)
    try:
        info = directory.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & stat.S_ISVTX:
        return
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return
    _tighten(directory, DIR_MODE)
