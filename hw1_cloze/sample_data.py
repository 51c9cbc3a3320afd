"""A small corpus and question set in the course's exact formats, made by a grammar.

Novels are Gutenberg-style ``.TXT`` files (CRLF, licence header and footer in both the old
"SMALL PRINT" and the newer "*** START OF" style, a Windows-1252 quote). Each sentence is
``The <adj> <animal> <verb> the <adj> <thing> .``: the animal decides both its verb and its thing,
so a language model that learned the grammar answers the cloze questions (blank = the thing).
"""

from __future__ import annotations

import os
import random
import textwrap
from pathlib import Path

from common.files import atomic_write

ANIMALS = ["cat", "dog", "horse", "owl", "fox", "bee", "crow", "goat", "seal", "wolf", "hen", "frog"]
VERBS = [
    "chases",
    "fetches",
    "pulls",
    "watches",
    "hunts",
    "visits",
    "steals",
    "eats",
    "balances",
    "follows",
    "guards",
    "catches",
]
THINGS = ["mouse", "stick", "cart", "moon", "rabbit", "flower", "ring", "grass", "ball", "deer", "egg", "fly"]
ADJECTIVES = ["big", "small", "old", "young", "quiet", "happy", "grey", "brave"]

OLD_HEADER = """The Project Gutenberg Etext of {title}\r
\r
*****These eBooks Were Prepared By Thousands of Volunteers!*****\r
\r
***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\r
Why is this "Small Print!" statement here?  You know: lawyers.\r
They tell us you might sue us if there is something wrong with\r
your copy of this etext, even if you got it for free.\r
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\r
\r
"""
NEW_HEADER = """The Project Gutenberg EBook of {title}\r
\r
This eBook is for the use of anyone anywhere at no cost and with\r
almost no restrictions whatsoever.\r
\r
*** START OF THIS PROJECT GUTENBERG EBOOK {title} ***\r
\r
"""
OLD_FOOTER = "\r\n\r\nEnd of The Project Gutenberg Etext of {title}\r\n"
NEW_FOOTER = "\r\n\r\n*** END OF THIS PROJECT GUTENBERG EBOOK {title} ***\r\n\r\nlicence text here\r\n"


def sentence(rng: random.Random, k: int) -> str:
    a1, a2 = rng.choice(ADJECTIVES), rng.choice(ADJECTIVES)
    return f"The {a1} {ANIMALS[k]} {VERBS[k]} the {a2} {THINGS[k]} ."


def write_novel(path: Path, title: str, sentences: int, rng: random.Random, old_style: bool) -> None:
    paragraphs = []
    while sentences > 0:
        n = min(sentences, rng.randint(3, 8))
        paragraphs.append(" ".join(sentence(rng, rng.randrange(len(ANIMALS))) for _ in range(n)))
        sentences -= n
    body = "\r\n\r\n".join("\r\n".join(textwrap.wrap(p, 70)) for p in paragraphs)
    header, footer = (OLD_HEADER, OLD_FOOTER) if old_style else (NEW_HEADER, NEW_FOOTER)
    text = header.format(title=title) + "\u201cChapter I\u201d\r\n\r\n" + body + footer.format(title=title)
    with atomic_write(path, "wb") as f:
        f.write(text.encode("cp1252"))


def write_questions(questions: Path, answers: Path, n: int, rng: random.Random) -> None:
    """``testing_data.csv`` (CRLF, some questions quoted because they hold commas) and its key."""
    q_rows, a_rows = ["id,question,a),b),c),d),e)"], ["id,answer"]
    for qid in range(1, n + 1):
        k = rng.randrange(len(ANIMALS))
        text = sentence(rng, k).replace(f" {THINGS[k]} .", " _____ .")
        if qid % 3 == 0:
            text = f'"{text[:-2]} , said he."'
        options = [THINGS[k]] + rng.sample([t for t in THINGS if t != THINGS[k]], 4)
        rng.shuffle(options)
        q_rows.append(f"{qid},{text}," + ",".join(options))
        a_rows.append(f"{qid},{'abcde'[options.index(THINGS[k])]}")
    for path, rows in ((questions, q_rows), (answers, a_rows)):
        with atomic_write(path, "wb") as f:
            f.write(("\r\n".join(rows) + "\r\n").encode())


def make_sample(
    root: str | os.PathLike, novels: int = 3, sentences: int = 1500, questions: int = 60, seed: int = 0
) -> Path:
    """Write ``Holmes_Training_Data/*.TXT``, ``testing_data.csv`` and ``test_answer.csv`` under ``root``."""
    root = Path(root)
    rng = random.Random(seed)
    for i in range(novels):
        write_novel(
            root / "Holmes_Training_Data" / f"SAMPL{i}10.TXT", f"Sample Novel {i}", sentences, rng, old_style=i % 2 == 0
        )
    write_questions(root / "testing_data.csv", root / "test_answer.csv", questions, rng)
    return root
