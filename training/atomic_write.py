"""Cache files that several processes may write at once (two trainings on one data folder,
dataset shards building one room bank): each writer writes under a name of its own, then
renames it into place, so no reader ever sees half a file and no writer moves another's
temporary file away. Whichever renames last wins; the contents are the same."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, write) -> None:
    """Call ``write(tmp)`` for a fresh temporary path beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp" + path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
