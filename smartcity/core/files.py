"""Files and folders that only the server's own user may read: the database, evidence
pictures, spools, detections logs, the signing key. They hold pictures of people, events and
password hashes; other local users get nothing (0700 folders, 0600 files), whatever the umask.
A folder or file that exists already with group or other bits (made by an earlier version) is
tightened when it is ours."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path, *, dedicated: bool = False) -> Path:
    """Create `path` (and missing parents) as 0700. Returns `path`.

    An existing folder is tightened only when it is `dedicated` to the server (its data folder,
    evidence, spool): the folder of a file a user names (a detections log in /tmp) is theirs to
    keep as it is. A shared folder (sticky bit, like /tmp) is never tightened."""
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if dedicated or not existed:
        tighten(path)
    return path


def tighten(path: Path) -> None:
    """Remove group and other permissions from `path` when it is ours, has any, and is not a
    shared folder (sticky bit)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid == os.getuid() and mode & 0o077 and not mode & stat.S_ISVTX:
        path.chmod(mode & ~0o077)


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """os.open a file created 0600 (an existing one is tightened); returns the descriptor."""
    fd = os.open(path, flags | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & ~0o077)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` as a 0600 file."""
    with os.fdopen(open_private(path), "wb") as f:
        f.write(data)


def touch_private(path: Path) -> None:
    """Create `path` empty as 0600 unless it exists (then tighten it): a file another library
    creates with the mode of an existing file (SQLite and its -wal and -shm)."""
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))
