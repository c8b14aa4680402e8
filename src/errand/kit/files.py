"""Files only their owner may read: the SQLite database (with its -wal and -shm) and the secret key.

Errand creates them with mode 0600 and the directories it creates for them with 0700,
whatever the process's umask, and narrows an existing file that others could read. A
directory that already exists is left as it is: the operator chose it and may share it.
SQLite gives its -wal and -shm files the mode of the database file, so a database file
created 0600 before SQLite first opens it keeps all three private.
"""

import os
import stat
from pathlib import Path

from errand.kit.logging import get_logger

log = get_logger("errand.files")

FILE_MODE = 0o600
DIR_MODE = 0o700
_GROUP_AND_OTHERS = 0o077


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) if needed; the directory itself gets 0700 when created here.

    Raises :class:`OSError` when it cannot be created.
    """
    if path.is_dir():
        return
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered through the umask


def narrow(path: Path) -> None:
    """Take group and other permissions off an existing file; a missing file is ignored.

    A file owned by someone else cannot be changed: that is logged, not raised, since
    Errand can still run (the operator set it up that way).
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & _GROUP_AND_OTHERS:
            os.chmod(path, mode & ~_GROUP_AND_OTHERS)
    except FileNotFoundError:
        return
    except PermissionError:
        log.warning("file_mode_not_narrowed", path=str(path))


def private_file(path: Path) -> bool:
    """Make sure ``path`` exists readable by its owner only: created empty with 0600, or narrowed.

    Returns whether it was created here. The parent directory must exist.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        narrow(path)
        return False
    os.close(fd)
    os.chmod(path, FILE_MODE)  # os.open's mode is filtered through the umask
    return True
