import pytest

from common.errors import UserError
from hw3_gan.tags import EYE_COLOURS, HAIR_COLOURS, describe, parse_tags, read_testing_text


def test_both_orders_single_tags_and_aliases():
    blue, red = HAIR_COLOURS.index("blue"), EYE_COLOURS.index("red")
    assert parse_tags("blue hair red eyes", "f:1") == (blue, red)
    assert parse_tags("red eyes  Blue Hair", "f:1") == (blue, red)
    assert parse_tags("red hair", "f:1") == (HAIR_COLOURS.index("red"), None)
    assert parse_tags("aqua eyes", "f:1") == (None, EYE_COLOURS.index("aqua"))
    assert parse_tags("grey hair", "f:1") == (HAIR_COLOURS.index("gray"), None)
    assert parse_tags("blond hair", "f:1") == (HAIR_COLOURS.index("blonde"), None)
    assert describe(blue, red) == "blue hair red eyes"


@pytest.mark.parametrize(
    "text,needle",
    [
        ("silver hair red eyes", "unknown hair colour 'silver' (valid: orange, white"),
        ("blue hair magenta eyes", "unknown eye colour 'magenta'"),
        ("blue hair red eyes smile", "expected '<colour> hair'"),
        ("", "expected '<colour> hair'"),
        ("blue hair red hair", "two hair colours"),
    ],
)
def test_bad_tags_name_the_place(text, needle):
    with pytest.raises(UserError) as err:
        parse_tags(text, "tests.txt:7")
    assert str(err.value).startswith("tests.txt:7: ") and needle in str(err.value)


def test_read_testing_text_course_quirks(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"1,blue hair blue eyes\r\n5,red hair\r\n\r\n8,aqua eyes purple hair\r\n")
    reqs = read_testing_text(path)
    assert [(r.id, r.line) for r in reqs] == [("1", 1), ("5", 2), ("8", 4)]
    assert reqs[1].eye is None and reqs[2].hair == HAIR_COLOURS.index("purple")


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "no testing lines"),
        (b"\n\n", "no testing lines"),
        (b"1,blue hair\n1,red hair\n", ":2: id '1' already used on line 1"),
        (b"1,blue hair\nblue hair red eyes\n", ":2: expected '<id>,<tags>'"),
        (b"../x,blue hair\n", ":1: id '../x' may only hold"),
    ],
)
def test_bad_testing_files(tmp_path, content, needle):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        read_testing_text(path)
    assert str(path) in str(err.value) and needle in str(err.value)
