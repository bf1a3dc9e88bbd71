"""Find and mask e-mail addresses, phone numbers and card numbers inside free text.

Two compiled patterns, each run only when the text can hold a match (an ``@``, a digit):

* an e-mail address: ``local@domain.tld`` with RFC 5322 atext in the local part; any
  non-ASCII letter or digit counts in the local part and in the domain labels (RFC 6531
  addresses such as ``josé@correo.españa.es``), so such an address is masked whole;
* a number run: seven or more digits joined by at most three separators (spaces,
  dashes, dots, parentheses; the Unicode dashes and spaces and the full-width forms
  count too), optionally opened by ``+`` or ``(``. Every Unicode decimal digit is a
  digit: ``５５５１２３４５６７`` is a phone number like ``5551234567``.

A number run does not start glued to an ASCII letter, digit or ``_``: ids such as
``USR5551234567`` or ``order_5551234567`` stay whole. The exception is a word that names
a phone (``tel``, ``phone``, ``ph``, ``mobile``, ``cell``, ``fax``, ... optionally
followed by ``no``, ``nr``, ``num`` or ``number`` and one ``_``, any case): in
``tel5551234567`` and ``phone_5551234567`` the number is masked; ``hotel5551234567``
is an id again.

A number run is then judged: a date (``2026-01-31``, ``31.01.2026``, also followed by
the hour of a time, ``2026-01-31 12:00``) is kept; so is a plain decimal, a run whose
only non-digit is one ``.`` (``1234567.89``, ``0.5551234567``, ``3.1415926``), except the
seven-digit local phone shape ``ddd.dddd`` (``555.1234``): the issue's phone pattern
allows dots, and three digits, a point and four digits is far more often that phone
than a measurement, so a four-place decimal from 100 to 999 is masked too (the cheap
mistake). Then 13..19 digits passing the Luhn check is a card; 7..15 digits is a phone;
more than 15 digits that are not a card are masked as a number (two phones side by
side, a long account number). Every repeat is possessive and every start is guarded by
a look-behind, so a scan is linear in the length of the text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "CARD",
    "EMAIL",
    "NUMBER",
    "PHONE",
    "contains_pii",
    "luhn_valid",
    "redact_text",
]

EMAIL: Final = "[EMAIL]"
PHONE: Final = "[PHONE]"
CARD: Final = "[CARD]"
NUMBER: Final = "[NUMBER]"

# RFC 5322 atext; in Unicode mode \w adds every non-ASCII letter and digit (RFC 6531),
# and the combining accents are what decomposed text writes after a letter.
_ATEXT = r"\w!#$%&'*+/=?^`{|}~.\-\u0300-\u036f"
# A domain label: letters, digits and "-" (an "_" glued to the end is masked with it).
_LABEL = r"[\w\-\u0300-\u036f]++"
_EMAIL: Final = re.compile(rf"(?<![{_ATEXT}])[{_ATEXT}]++@{_LABEL}(?:\.{_LABEL})+")
# Separators: ASCII space . - ( ), no-break and thin spaces, the Unicode hyphens and
# dashes, the minus sign, the ideographic space and the full-width ( ) - . forms.
_SEP = r" .\-()\u00a0\u2009\u202f\u3000\u2010-\u2015\u2212\uff08\uff09\uff0d\uff0e"
_PHONE_WORDS: Final = (
    "tel", "tele", "telephone", "phone", "ph", "mob", "mobile", "cell", "cellphone",
    "fax", "tlf", "sms", "whatsapp",
)  # fmt: skip
_PHONE_SUFFIXES: Final = ("", "no", "nr", "num", "number")


def _glued_phone_word() -> str:
    """Look-behinds for a phone word glued to a run's first character, one per length.

    A look-behind needs a fixed width, hence one per word length; each also checks that
    the word starts a word (``hotel5551234567`` is an id, not a phone).
    """
    by_length: dict[int, list[str]] = {}
    for word in _PHONE_WORDS:
        for suffix in _PHONE_SUFFIXES:
            for tail in ("", "_"):
                by_length.setdefault(len(word + suffix + tail), []).append(word + suffix + tail)
    return "|".join(
        rf"(?<=(?<![A-Za-z0-9])(?ai:{'|'.join(words)}).)" for _, words in sorted(by_length.items())
    )


# The look-behind comes after the first character so that the scan can skip straight to
# candidate characters; it checks the character before the run: not an id character.
_OPEN = r"+\uff0b(\uff08"
_RUN_REST = rf"(?:[{_SEP}]{{0,3}}\d){{6,}}+[)\uff09]?"
_NUMBER_RUN: Final = re.compile(rf"[{_OPEN}\d](?<![A-Za-z0-9_].){_RUN_REST}")
# The same, also starting right after a phone word. Its look-behinds cost a few µs on
# text full of ids, so it only runs on text that holds a phone word at all.
_NUMBER_RUN_OR_GLUED: Final = re.compile(
    rf"[{_OPEN}\d](?:(?<![A-Za-z0-9_].)|(?<=[A-Za-z_].)(?:{_glued_phone_word()})){_RUN_REST}"
)
_DIGIT: Final = re.compile(r"\d")
# What a number run may hold besides digits; deleting it leaves the digits.
_SEPARATORS: Final = str.maketrans(
    "",
    "",
    " .-()+\u00a0\u2009\u202f\u3000\u2010\u2011\u2012\u2013\u2014\u2015"
    "\u2212\uff08\uff09\uff0d\uff0e\uff0b",
)
_DECIMAL_PHONE: Final = re.compile(r"\d{3}\.\d{4}", re.ASCII)
# A whole run that is a date, or a date plus the hour of a time (the run stops at ":").
_DATE_RUN: Final = re.compile(
    r"(?:(\d{4})([-/.])(\d{1,2})\2(\d{1,2})|(\d{1,2})([-/.])(\d{1,2})\6(\d{4}))([ T]\d{1,2})?",
    re.ASCII,
)
# Shortest text that can hold something to mask: "a@b.co".
_MIN_LENGTH: Final = 6


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of payment card numbers (``digits``: ASCII digits only).

    Example:
        >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
        (True, False)
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _ascii_digits(text: str) -> str:
    """``text`` with every Unicode decimal digit written as its ASCII digit."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


def _is_date(run: str, following: str) -> bool:
    """Whether an ASCII number run is a date (plus the hour of a time, if ``:`` follows)."""
    found = _DATE_RUN.fullmatch(run)
    if found is None:
        return False
    y1, _, m1, d1, d2, _, m2, y2, hour = found.groups()
    if hour is not None and following != ":":
        return False
    year, month, day = (y1, m1, d1) if y1 is not None else (y2, m2, d2)
    # Day and month order differ by locale: one plausible reading is enough.
    m, d = int(month), int(day)
    return 1000 <= int(year) <= 2999 and (
        (1 <= m <= 12 and 1 <= d <= 31) or (1 <= d <= 12 and 1 <= m <= 31)
    )


def _judge(run: str, following: str) -> str:
    """The mask for one number run, or the run itself when it is not PII."""
    digits = run.translate(_SEPARATORS)
    count = len(digits)
    if count < 7:
        return run
    ascii_run = _ascii_digits(run)
    # One non-digit and it is a dot: a plain decimal such as 1234567.89, unless it has the
    # shape of a local phone number, ddd.dddd.
    if len(run) - count == 1 and "." in run:
        return PHONE if _DECIMAL_PHONE.fullmatch(ascii_run) else run
    # A date has 6..8 digits, 10 with the hour of a time.
    if count <= 10 and _is_date(ascii_run, following):
        return run
    if 13 <= count <= 19 and luhn_valid(_ascii_digits(digits)):
        return CARD
    return PHONE if count <= 15 else NUMBER


def _mask_number(match: re.Match[str]) -> str:
    end = match.end()
    return _judge(match.group(), match.string[end : end + 1])


def _may_hold_phone_word(text: str) -> bool:
    """Whether ``text`` holds a phone word (each of them contains one of these stems)."""
    low = text.lower()
    return (
        "tel" in low
        or "ph" in low
        or "mob" in low
        or "cell" in low
        or "fax" in low
        or "tlf" in low
        or "sms" in low
        or "whatsapp" in low
    )


def redact_text(text: str) -> str:
    """Mask every e-mail address, phone number and card number found in ``text``.

    Example:
        >>> redact_text("Call +1 (555) 123-4567 or mail jo@example.com on 2026-01-31")
        'Call [PHONE] or mail [EMAIL] on 2026-01-31'
        >>> redact_text("card 4111 1111 1111 1111, total 1234567.89, order 12345")
        'card [CARD], total 1234567.89, order 12345'
    """
    if len(text) < _MIN_LENGTH:
        return text
    if "@" in text:
        text = _EMAIL.sub(EMAIL, text)
    if _DIGIT.search(text) is not None:
        runs = _NUMBER_RUN_OR_GLUED if _may_hold_phone_word(text) else _NUMBER_RUN
        text = runs.sub(_mask_number, text)
    return text


def contains_pii(text: str) -> bool:
    """Whether :func:`redact_text` would change ``text``.

    Example:
        >>> contains_pii("jo@example.com"), contains_pii("order 12345")
        (True, False)
    """
    return redact_text(text) != text
