"""Reading course text files (UTF-8, Windows-1252 or latin-1; CRLF) and offline tokenisation."""

from __future__ import annotations

import os
import re
from pathlib import Path

from common.errors import UserError

# Words (with inner apostrophes: "don't", "holmes's"), numbers, or single punctuation marks.
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*|[^\sA-Za-z0-9]")
_SPACES = re.compile(r"\s+")


def decode_bytes(data: bytes, source: object = "<bytes>") -> str:
    """Decode UTF-16 with its BOM, else UTF-8 (BOM allowed), else Windows-1252, else latin-1;
    refuse binary data.

    UTF-16 is what Windows PowerShell writes by default; its zero bytes are not a sign of binary
    data once the BOM says what they are. Windows-1252 leaves five byte values undefined, so
    latin-1 is the last resort that never fails.
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UserError(f"{source}: starts like UTF-16 text but does not decode as it") from None
    if b"\x00" in data[:8192]:
        raise UserError(f"{source}: looks like a binary file, not text")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def read_text(path: str | os.PathLike) -> str:
    """The whole file as ``str`` with ``\\n`` line endings, whatever its encoding and endings."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    return normalize_newlines(decode_bytes(data, path))


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: str | os.PathLike) -> list[str]:
    """Lines without their endings (CRLF or LF). A final newline does not add an empty line."""
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Split into words and punctuation offline (no nltk data needed); lowercased by default."""
    if lower:
        text = text.lower()
    return _TOKEN.findall(text.replace("’", "'"))


def squash_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()
