"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part:
    a temporary file of this process and thread in the same folder, then a rename. Several
    processes may write the same path at once (xdist workers filling a shared cache): the last
    rename wins, and each wrote a whole file. OSError when it cannot be written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
