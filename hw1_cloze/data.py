"""Reading the course files: Gutenberg novels, the cloze questions and the answer keys."""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError, where
from common.text import read_text, tokenize
from common.vocab import EOS

BLANK = "_____"
CHOICES = "abcde"

# The Gutenberg boilerplate: old-style "*END*THE SMALL PRINT!" licences end the header; newer files
# mark the text with "*** START OF THIS PROJECT GUTENBERG EBOOK". The footer starts at "End of
# (the) Project Gutenberg ..." or "*** END OF THIS PROJECT GUTENBERG EBOOK".
_HEADER_END = re.compile(r"^.*(\*END\*?THE SMALL PRINT|\*\*\* ?START OF TH(E|IS) PROJECT GUTENBERG).*$", re.I | re.M)
_FOOTER = re.compile(r"^\s*(\*\*\* ?)?END OF (THE |THIS )?PROJECT GUTENBERG", re.I | re.M)
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]*[A-Z])")


def strip_gutenberg(text: str) -> str:
    """The novel's own text, without the licence header and footer (text left as is if unmarked)."""
    header = _HEADER_END.search(text)
    if header:
        text = text[header.end() :]
    footer = _FOOTER.search(text)
    if footer:
        text = text[: footer.start()]
    return text


def split_sentences(text: str) -> list[str]:
    """Paragraphs (blank-line separated) joined, then cut after ``. ! ?`` before a capital."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        if para:
            out.extend(s for s in _SENTENCE_END.split(para) if s)
    return out


def corpus_tokens(text: str) -> list[str]:
    """Tokens of a raw novel: sentences tokenised like questions, each followed by ``<eos>``."""
    tokens: list[str] = []
    for sentence in split_sentences(strip_gutenberg(text)):
        words = tokenize(sentence)
        if words:
            tokens.extend(words)
            tokens.append(EOS)
    return tokens


@dataclass(frozen=True)
class Question:
    id: int
    text: str
    options: tuple[str, ...]  # five candidate words, for answers a..e

    def filled(self, k: int) -> list[str]:
        """Tokens of the question with option ``k`` in the blank."""
        return tokenize(self.text.replace(BLANK, f" {self.options[k]} "))


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    text = read_text(path)
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    reader = csv.reader(io.StringIO(text))
    rows = []
    for row in reader:
        if row and any(cell.strip() for cell in row):
            rows.append((reader.line_num, row))
    return rows


def read_questions(path: str | os.PathLike) -> list[Question]:
    """Questions from ``id,question,a),b),c),d),e)``: each row needs one blank and five options."""
    path = Path(path)
    rows = _csv_rows(path)
    header_line, header = rows[0]
    if [h.strip().lower() for h in header[:2]] != ["id", "question"]:
        raise UserError(f"{where(path, header_line)}: expected a header 'id,question,a),b),c),d),e)'")
    questions, seen = [], set()
    for line, row in rows[1:]:
        if len(row) != 7:
            raise UserError(f"{where(path, line)}: expected id, question and 5 options, got {len(row)} fields")
        try:
            qid = int(row[0])
        except ValueError:
            raise UserError(f"{where(path, line)}: id '{row[0]}' is not an integer") from None
        blanks = row[1].count(BLANK)
        if blanks != 1:
            raise UserError(f"{where(path, line)}: question must have exactly one blank '{BLANK}', found {blanks}")
        options = tuple(o.strip() for o in row[2:])
        if not all(options):
            raise UserError(f"{where(path, line)}: an option is empty")
        if qid in seen:
            raise UserError(f"{where(path, line)}: duplicate id {qid}")
        seen.add(qid)
        questions.append(Question(qid, row[1], options))
    if not questions:
        raise UserError(f"{path}: no questions after the header")
    return questions


def read_answers(path: str | os.PathLike) -> dict[int, str]:
    """``id,answer`` with answers a-e (the key, or a submission)."""
    path = Path(path)
    rows = _csv_rows(path)
    header_line, header = rows[0]
    if [h.strip().lower() for h in header] != ["id", "answer"]:
        raise UserError(f"{where(path, header_line)}: expected a header 'id,answer', got {','.join(header)!r}")
    answers = {}
    for line, row in rows[1:]:
        if len(row) != 2 or row[1].strip().lower() not in CHOICES:
            raise UserError(f"{where(path, line)}: expected 'id,answer' with answer a-e, got {','.join(row)!r}")
        try:
            qid = int(row[0])
        except ValueError:
            raise UserError(f"{where(path, line)}: id '{row[0]}' is not an integer") from None
        if qid in answers:
            raise UserError(f"{where(path, line)}: duplicate id {qid}")
        answers[qid] = row[1].strip().lower()
    return answers
