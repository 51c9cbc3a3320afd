"""Checks shared by the safety tests: a command refused a bad input cleanly and touched nothing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

USER_FILE = "thesis.txt"
USER_TEXT = b"two years of work\n"


def snapshot(*roots: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``roots`` (hidden ones too): content hash and mode."""
    out = {}
    for root in roots:
        paths = [root] + sorted(root.rglob("*")) if root.is_dir() else [root]
        for p in paths:
            if p.is_dir():
                out[str(p)] = ("dir", p.stat().st_mode)
            elif p.exists():
                out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
    return out


def user_folder(path: Path) -> Path:
    """A folder holding an unrelated file of the user's."""
    path.mkdir(parents=True, exist_ok=True)
    (path / USER_FILE).write_bytes(USER_TEXT)
    return path


def assert_user_file_kept(folder: Path) -> None:
    assert (folder / USER_FILE).read_bytes() == USER_TEXT


def assert_refused(
    main: Callable[[Sequence[str]], int], argv: Sequence[str], needle: str, capsys, roots: Sequence[Path]
) -> str:
    """``main(argv)`` exits 2 with exactly one ``error:`` line holding ``needle``, and every file and
    folder under ``roots`` is byte-identical afterwards (no output, no temp file, no input changed)."""
    before = snapshot(*roots)
    capsys.readouterr()
    code = main(list(map(str, argv)))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (argv, err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert needle in err[0], (needle, err[0])
    assert snapshot(*roots) == before, argv
    return err[0]


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
