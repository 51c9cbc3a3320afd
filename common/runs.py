"""Run folders (``runs/<homework>/<name>/``), data and cache locations."""

from __future__ import annotations

import os
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from common.errors import UserError, one_line
from common.files import RUN_FILES, atomic_dir, check_creatable

REPO_ROOT = Path(__file__).resolve().parent.parent


def runs_root() -> Path:
    """``$MLDS_RUNS`` or ``./runs``."""
    return Path(os.environ.get("MLDS_RUNS", "runs"))


def default_run_dir(homework: str) -> Path:
    """``runs/<homework>/<timestamp>``, where a run goes without ``--run-dir``."""
    return runs_root() / homework / time.strftime("%Y%m%d-%H%M%S")


def fresh_run_dir(path: str | os.PathLike) -> Path:
    """``path``, or ``path-2``, ``path-3``, ...: the first that holds no run (demos that run again)."""
    path, n = Path(path), 1
    candidate = path
    while candidate.exists() and (not candidate.is_dir() or any((candidate / f).exists() for f in RUN_FILES)):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def check_new_run_dir(path: Path) -> None:
    """Refuse a run folder that is a file or already holds a run, before anything is written."""
    if path.exists() and not path.is_dir():
        raise UserError(f"--run-dir {path}: is a file, expected a run folder")
    check_creatable(path)
    held = [name for name in RUN_FILES if (path / name).exists()]
    if held:
        raise UserError(
            f"--run-dir {path}: already holds a run ({held[0]}); add --resume to continue it, "
            "or choose another --run-dir"
        )


def resume_dir(homework: str, run_dir: str | os.PathLike | None) -> Path:
    """The run folder ``--resume`` continues: the one given, else the newest with a ``last.pt``."""
    if run_dir:
        path = Path(run_dir)
        if not (path / "last.pt").is_file():
            raise UserError(f"--resume: {path / 'last.pt'} not found (nothing to resume; drop --resume to start)")
        return path
    root = runs_root() / homework
    found = sorted(root.glob("*/last.pt"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not found:
        raise UserError(f"--resume: no last.pt under {root}/ (pass --run-dir)")
    return found[-1].parent


def latest_checkpoint(
    homework: str,
    name: str = "best.pt",
    accept: Callable[[Path], bool] | None = None,
    kind: str = "",
    flag: str = "--checkpoint",
) -> Path:
    """The newest ``name`` under ``runs/<homework>/``; a clear error when there is none.

    ``accept(run_dir)`` narrows the choice to runs of one ``kind`` (e.g. a chatbot's backward model);
    ``flag`` is the command's option that names a checkpoint instead.
    """
    root = runs_root() / homework
    found = [p for p in root.glob(f"*/{name}") if accept is None or accept(p.parent)] if root.is_dir() else []
    if not found:
        what = f"{kind} {name}" if kind else name
        raise UserError(f"no {what} under {root}/: train first (python -m {homework}.train) or pass {flag}")
    return max(found, key=lambda p: p.stat().st_mtime)


def data_root(required: bool = False) -> Path | None:
    """The course data folder from ``$MLDS_DATA`` (``None`` when unset and not required)."""
    value = os.environ.get("MLDS_DATA")
    if not value:
        if required:
            raise UserError("MLDS_DATA is not set: point it at the course data (e.g. ../shared/data)")
        return None
    path = Path(value)
    if not path.is_absolute() and not path.is_dir():
        path = REPO_ROOT / path  # CI sets ../shared/data relative to the repository
    if not path.is_dir():
        raise UserError(f"{value}: MLDS_DATA folder not found")
    return path


def cache_dir(*parts: str) -> Path:
    """A git-ignored cache folder: ``$MLDS_CACHE`` or ``<repo>/.cache``, plus ``parts``."""
    path = Path(os.environ.get("MLDS_CACHE", REPO_ROOT / ".cache")).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def unpack(archive: str | os.PathLike, name: str | None = None) -> Path:
    """Extract a ``.tar.*`` or ``.zip`` once into the cache and return the folder it went to.

    The read-only original is never touched; a half-finished extraction is never reused because
    the folder only appears (by rename) once it is complete.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"{archive}: archive not found")
    stem = name or archive.name.split(".")[0]
    dest = cache_dir("unpacked") / f"{stem}-{archive.stat().st_size}"
    if dest.is_dir():
        return dest
    try:
        with atomic_dir(dest) as tmp:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive) as tf:
                    tf.extractall(tmp, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise UserError(f"{archive}: cannot unpack ({one_line(exc) or type(exc).__name__})") from None
    return dest
