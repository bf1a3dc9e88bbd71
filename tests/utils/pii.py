"""Hypothesis strategies that plant PII the way real logs carry it, for the scrub property.

Secrets come in the shapes the issue defines (e-mail addresses, ASCII and IDN; phone
numbers of 7 to 15 digits with an optional +, spaces, dashes, dots and parentheses;
Luhn-valid card numbers), written with ASCII or other Unicode decimal digits, and glued
to random neighbouring text rather than set between spaces. PII keys come in case,
separator and plural variants.

The documented exceptions of ``redact.py`` are excluded from the phone shapes (a run
that is a date, or a decimal with one dot other than the ``ddd.dddd`` phone shape), and
a number is never glued to an id character on its left (``USR5551234567`` is an id by
rule) unless that neighbour is a phone word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "PLANTED",
    "Contact",
    "cards",
    "glued",
    "idn_emails",
    "phones",
    "pii_keys",
    "secrets",
]

# (words of a PII key, plural of its last word)
_PII_KEY_WORDS: list[tuple[tuple[str, ...], str]] = [
    (("email",), "emails"),
    (("e", "mail"), "mails"),
    (("customer", "id"), "ids"),
    (("phone",), "phones"),
    (("phone", "number"), "numbers"),
    (("ssn",), "ssns"),
    (("address",), "addresses"),
    (("home", "address"), "addresses"),
    (("email", "address"), "addresses"),
    (("name",), "names"),
    (("first", "name"), "names"),
    (("user", "name"), "names"),
]
_CASES = (str.lower, str.upper, str.title)
_SEPARATORS = ("_", "-", ".", " ", "", "camel")


@st.composite
def pii_keys(draw: st.DrawFn) -> str:
    """A default PII key in any case, separator style, singular or plural."""
    words, plural = draw(st.sampled_from(_PII_KEY_WORDS))
    if draw(st.booleans()):
        words = (*words[:-1], plural)
    separator = draw(st.sampled_from(_SEPARATORS))
    if separator == "camel":
        return words[0].lower() + "".join(w.title() for w in words[1:])
    return separator.join(draw(st.sampled_from(_CASES))(w) for w in words)


# Decimal digits of a few scripts: ASCII, full-width, Arabic-Indic, Devanagari.
_DIGIT_SCRIPTS = ("0123456789", "０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९")
_DATE = re.compile(
    r"(?:\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{4})(?:[ T]\d{1,2})?", re.ASCII
)
_NOT_DIGIT = re.compile(r"\D", re.ASCII)


def _ascii(text: str) -> str:
    return "".join(str(int(c)) if c.isdecimal() else c for c in text)


def _is_documented_exception(phone: str) -> bool:
    """A date or a one-dot decimal other than ddd.dddd: kept by rule, not a leak."""
    text = _ascii(phone)
    if _DATE.fullmatch(text):
        return True
    others = _NOT_DIGIT.findall(text)
    return others == ["."] and re.fullmatch(r"\d{3}\.\d{4}", text) is None


def _in_script(draw: st.DrawFn, digits: str) -> str:
    script = draw(st.sampled_from(_DIGIT_SCRIPTS))
    return "".join(script[int(d)] for d in digits)


@st.composite
def _phone_shape(draw: st.DrawFn) -> str:
    digits = "".join(map(str, draw(st.lists(st.integers(0, 9), min_size=7, max_size=15))))
    digits = _in_script(draw, digits)
    groups: list[str] = []
    rest = digits
    while rest:
        size = draw(st.integers(1, 5))
        groups.append(rest[:size])
        rest = rest[size:]
    paren = draw(st.sampled_from([None, 0, 1])) if len(groups) > 1 else None
    text = ""
    for i, group in enumerate(groups):
        if i == paren:
            # at most three separator characters ever stand between two digits
            text += draw(st.sampled_from(["", " "])) if i else ""
            text += f"({group})"
            continue
        if i:
            after_paren = i - 1 == paren
            joiners = ["", " ", "-"] if after_paren else ["", " ", "-", ".", " - ", "\u2013"]
            text += draw(st.sampled_from(joiners))
        text += group
    return draw(st.sampled_from(["", "+"])) + text


# Shapes people write most often ("d" is a digit), tried as often as random shapes.
_COMMON_SHAPES = (
    "ddd.dddd",
    "ddd-dddd",
    "ddd.ddd.dddd",
    "(ddd) ddd-dddd",
    "+d ddd ddd dddd",
    "+dd dd dddd dddd",
    "+dd (d) ddd ddd ddd",
    "dddddddddd",
)


@st.composite
def _common_phone(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(_COMMON_SHAPES))
    digits = _in_script(draw, "".join(str(draw(st.integers(0, 9))) for _ in shape))
    it = iter(digits)
    return "".join(next(it) if c == "d" else c for c in shape)


def phones() -> st.SearchStrategy[str]:
    """A phone number in any shape the issue's definition allows (bar the exceptions)."""
    shapes = st.one_of(_common_phone(), _phone_shape())
    return shapes.filter(lambda p: not _is_documented_exception(p))


@st.composite
def cards(draw: st.DrawFn) -> str:
    """A Luhn-valid card number of 13 to 19 digits, grouped by four or not."""
    body = [draw(st.integers(1, 9))] + draw(st.lists(st.integers(0, 9), min_size=11, max_size=17))
    total = 0  # choose the check digit that makes the Luhn sum a multiple of ten
    for position, value in enumerate(reversed(body)):
        if position % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    digits = _in_script(draw, "".join(map(str, [*body, (10 - total % 10) % 10])))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


_IDN_LETTERS = "abcxyzéüñçøßжяд中文한"


@st.composite
def idn_emails(draw: st.DrawFn) -> str:
    """An address whose local part or domain holds non-ASCII letters."""
    label = st.text(alphabet=_IDN_LETTERS + "0123456789", min_size=1, max_size=8)
    local = draw(st.text(alphabet=_IDN_LETTERS + "._+", min_size=1, max_size=10))
    domain = ".".join(draw(st.lists(label, min_size=1, max_size=3)))
    tld = draw(st.sampled_from(["com", "de", "рф", "中国", "españa"]))
    return f"{local}@{domain}.{tld}"


def secrets() -> st.SearchStrategy[str]:
    return st.one_of(st.emails(), idn_emails(), phones(), cards())


# Left neighbours that end a token: never an ASCII letter, digit or "_" (that would make
# a number part of an id by rule), nor "." or "-" (a decimal point or a date's dash).
_LEFT_EDGES = list(" \n\t,;:!?/\"'<>[]{}=#*&%$~|`\u00a0éж中") + ["電話", "📞 ", "Tel.", "tel:"]
# Phone words may be glued straight to the number.
_PHONE_WORDS = ["tel", "Tel", "TEL", "phone_", "Phone", "ph", "mobile", "fax_", "cellphone"]
# Right neighbours: anything but a digit or a separator that could join more digits.
_RIGHT_EDGES = list(" \n\t,;:!?/\"'<>[]{}=#*&%$~|`éж中xX_")


@st.composite
def glued(draw: st.DrawFn, secret: str, filler: st.SearchStrategy[str]) -> str:
    """``secret`` inside random text, touching its neighbours on both sides."""
    left = draw(filler) + draw(st.sampled_from(_LEFT_EDGES))
    if not secret.startswith(("+", "(")) and "@" not in secret and draw(st.booleans()):
        left += draw(st.sampled_from(_PHONE_WORDS))
    right = draw(st.sampled_from(_RIGHT_EDGES)) + draw(filler)
    return left + secret + right


@dataclass(frozen=True)
class Contact:
    """A record carried as an object, not a mapping."""

    name: str
    phone: str
    note: Any


# Fixed values the integration tests plant in requests (an e-mail, a phone number, a
# name, an address) and then look for in every output and log line.
PLANTED = ("ann.lee@example.com", "+44 20 7946 0958", "Ann Lee", "221B Baker Street")
