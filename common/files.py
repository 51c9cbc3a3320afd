"""Safe writes: a killed process never leaves a half-written file, and no command writes over an
input or deletes what it did not write."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

from common.errors import UserError

# Marks a folder of generated sample data, so generating it again may replace it.
SAMPLE_MARK = ".sample_data"
# What a training run writes into its folder; any of them there means the folder holds a run.
RUN_FILES = ("config.yaml", "last.pt", "best.pt", "metrics.jsonl")


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


def _temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; a finished output gets the mode any other program would give it
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def ensure_parent(path: str | os.PathLike) -> Path:
    """Create the parent folder of ``path``; a failure is a :class:`UserError` naming it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{path.parent}: is a file, expected a folder") from None
    except OSError as exc:
        raise UserError(f"{path.parent}: cannot create folder ({exc.strerror})") from None
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: is a file, expected a folder")
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"{path.parent}: folder is not writable")
    return path


def _identities(path: Path) -> set:
    """What names one file: its resolved path, and (hard links) its device and inode when it exists."""
    keys: set = {path.resolve()}
    with contextlib.suppress(OSError):
        st = path.stat()
        keys.add((st.st_dev, st.st_ino))
    return keys


def check_outputs(outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Refuse outputs that would destroy something: an input, another output, or a folder.

    Every command with an output calls this before its slow part, so a mistyped command line
    fails at once and leaves every file as it was. Each path is resolved once: a command may
    name thousands of outputs (one image each).
    """
    outs = [Path(p) for p in outputs if p]
    ins = {key: p for p in (Path(q) for q in inputs if q) for key in _identities(p)}
    earlier: dict = {}
    for out in outs:
        if out.is_dir():
            raise UserError(f"{out}: is a folder, expected an output file")
        keys = _identities(out)
        for key in keys:
            if key in ins:
                raise UserError(f"{out}: is also an input ({ins[key]}); choose another output file")
        for key in keys:
            if key in earlier:
                raise UserError(f"{out}: given as two outputs ({earlier[key]}); choose different files")
        earlier.update(dict.fromkeys(keys, out))
        if out.name in RUN_FILES and any((out.parent / n).is_file() for n in RUN_FILES if n != out.name):
            # the default checkpoint of a command is an input it never lists
            raise UserError(f"{out}: is a file of the training run in {out.parent}; choose another output file")
        check_creatable(out.parent)


def check_creatable(folder: str | os.PathLike) -> None:
    """Refuse a ``folder`` that neither exists nor could be created; creates nothing (a command that
    fails later leaves no empty folder behind)."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{folder}: cannot create folder ({existing} is a file)")
    if not os.access(existing, os.W_OK):
        raise UserError(f"{existing}: folder is not writable")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    On any exception the temp file is removed and ``path`` is left untouched.
    """
    path = ensure_parent(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected an output file")
    tmp = _temp_beside(path)
    binary = "b" in mode
    try:
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temp file and a rename."""
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def make_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if missing; an existing file there is a :class:`UserError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: is a file, expected a folder")
    ensure_parent(path / "x")
    return path


@contextlib.contextmanager
def staged_files(folder: str | os.PathLike) -> Iterator[Path]:
    """Write files into a hidden staging folder; on success move each into ``folder``.

    Only the files written are moved, each by an atomic rename: whatever else ``folder`` holds is
    left alone. On failure nothing is moved, and a ``folder`` this call created is removed again.
    """
    folder = Path(folder)
    created = not folder.exists()
    make_folder(folder)
    stage = Path(tempfile.mkdtemp(prefix=".staging.", dir=folder))
    try:
        yield stage
        for item in sorted(stage.iterdir()):
            if (folder / item.name).is_dir():
                raise UserError(f"{folder / item.name}: is a folder, expected an output file")
        for item in sorted(stage.iterdir()):
            os.chmod(item, 0o666 & ~_umask())
            os.replace(item, folder / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, mark: str | None = None) -> Iterator[Path]:
    """Build a folder under a temp name and rename it into place on success.

    An existing ``path`` is replaced only when it holds the file ``mark``, which this call also
    writes into the new folder: proof that an earlier call made it (regenerated sample data).
    Without ``mark`` nothing is ever replaced.
    """
    path = ensure_parent(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if mark is not None:
            (tmp / mark).write_text("written by this program; replaced when written again\n", encoding="utf-8")
        if path.exists():
            if mark is None or not (path / mark).is_file():
                raise UserError(f"{path}: already exists and was not written here; not replaced")
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
