import random

import pytest

from common.errors import UserError
from common.text import read_text
from hw1_cloze.data import corpus_tokens, read_answers, read_questions, split_sentences, strip_gutenberg
from hw1_cloze.sample_data import make_sample, write_novel


@pytest.mark.parametrize("old_style", [True, False])
def test_gutenberg_header_and_footer_are_stripped(tmp_path, old_style):
    path = tmp_path / "NOVEL10.TXT"
    write_novel(path, "A Title", 12, random.Random(1), old_style)
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\x93" in raw  # CRLF and a Windows-1252 quote, like the real files
    body = strip_gutenberg(read_text(path))
    assert "Small Print" not in body and "START OF" not in body and "Project Gutenberg" not in body
    assert body.lstrip().startswith("“Chapter I”")
    tokens = corpus_tokens(read_text(path))
    assert tokens.count("<eos>") == 13  # the chapter line + 12 sentences
    assert "lawyers" not in tokens and "licence" not in tokens


def test_split_sentences_keeps_abbreviation_free_sentences():
    text = 'He came.  She said "Go!" Then\nhe went? yes.\n\nNew para'
    assert split_sentences(text) == ["He came.", 'She said "Go!"', "Then he went? yes.", "New para"]


def test_questions_crlf_and_quoted_commas(tmp_path):
    make_sample(tmp_path, novels=1, sentences=5, questions=6)
    raw = (tmp_path / "testing_data.csv").read_bytes()
    assert b"\r\n" in raw and b'"' in raw
    qs = read_questions(tmp_path / "testing_data.csv")
    assert [q.id for q in qs] == list(range(1, 7))
    quoted = qs[2]
    assert ", said he." in quoted.text and len(quoted.options) == 5
    filled = quoted.filled(0)
    assert quoted.options[0] in filled and "_____" not in " ".join(filled) and "," in filled
    assert set(read_answers(tmp_path / "test_answer.csv").values()) <= set("abcde")


BAD = {
    "no blank": (
        "id,question,a),b),c),d),e)\r\n1,A sentence.,a,b,c,d,e\r\n",
        "x.csv:2: question must have exactly one",
    ),
    "two blanks": (
        'id,question,a),b),c),d),e)\r\n1,ok _____ x,a,b,c,d,e\r\n2,"_____ and _____",a,b,c,d,e\r\n',
        "x.csv:3: question must have exactly one blank '_____', found 2",
    ),
    "four options": ("id,question,a),b),c),d),e)\r\n1,A _____ b.,a,b,c,d\r\n", "x.csv:2: expected id, question and 5"),
    "empty": ("", "x.csv: file is empty"),
    "no header": ("1,A _____.,a,b,c,d,e\n", "x.csv:1: expected a header"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_question_files_name_file_and_line(tmp_path, case):
    text, message = BAD[case]
    (tmp_path / "x.csv").write_text(text, newline="")
    with pytest.raises(UserError) as err:
        read_questions(tmp_path / "x.csv")
    assert message in str(err.value)
