import math

import pytest

from tracker.errors import OpError
from tracker.project.flags import FlagDef, format_value, parse_value


@pytest.mark.parametrize("text,value", [
    ("1", 1), ("-3", -3), ("1.0", 1.0), ("1e-3", 0.001), (".5", 0.5),
    ("yes", True), ("no", False), ("true", True), ("False", False),
    ("hello", "hello"), ("'1'", "1"), ('"yes"', "yes"), ("1.2.3", "1.2.3"), ("", ""),
])
def test_parse_value_types_like_guild(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)


def test_parse_special_floats():
    assert math.isnan(parse_value("nan"))
    assert parse_value("-inf") == -math.inf


@pytest.mark.parametrize("value", ["hello world", "1", "yes", "", "it's", "a;b", 1, 1.5, True, None, "x"])
def test_format_value_round_trips(value):
    import shlex

    text = format_value(value)
    # What a shell would pass on after reading the formatted value:
    (word,) = shlex.split(text) if text != "''" else [""]
    parsed = parse_value(word) if not (text.startswith("'") and isinstance(value, str)) else word
    assert parsed == value


def test_format_value_quotes_like_guild():
    assert format_value("hello steps") == "'hello steps'"
    assert format_value("hi-5") == "hi-5"
    assert format_value(1.0) == "1.0"
    assert format_value("1.0") == "'1.0'"


def test_flagdef_coerce_types_and_choices():
    assert FlagDef("n", type="int").coerce(3) == 3
    assert FlagDef("lr", type="float").coerce(1) == 1.0
    assert FlagDef("v", type="bool").coerce("yes") is True
    assert FlagDef("s", type="string").coerce(1.5) == "1.5"
    with pytest.raises(OpError, match="expected int"):
        FlagDef("n", type="int").coerce("abc")
    with pytest.raises(OpError, match="expected int"):
        FlagDef("n", type="int").coerce(1.5)
    with pytest.raises(OpError, match="choose from sgd, adam"):
        FlagDef("o", choices=["sgd", "adam"]).coerce("rmsprop")
