"""Find and mask e-mail addresses, phone numbers and card numbers inside free text.

Two compiled patterns, each run only when the text can hold a match (an ``@``, a digit):

* an e-mail address: ``local@domain.tld`` with RFC 5322 atext in the local part;
* a number run: seven or more ASCII digits joined by at most three of ``space . - ( )``,
  optionally opened by ``+`` or ``(``, and not glued to a letter, digit or ``_`` before
  it (so ids such as ``USR5551234567`` or ``order_5551234567`` stay whole).

A number run is then judged: a date (``2026-01-31``, ``31.01.2026``, also followed by
the hour of a time, ``2026-01-31 12:00``) and a plain decimal (``1234567.89``) are kept;
13..19 digits passing the Luhn check is a card; 7..15 digits is a phone; more than 15
digits that are not a card are masked as a number (two phones side by side, a long
account number). Every repeat is possessive and every start is guarded by a
one-character look-behind, so a scan is linear in the length of the text.
"""

from __future__ import annotations

import re
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

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-"
_EMAIL: Final = re.compile(
    rf"(?<![{_ATEXT}])[{_ATEXT}]++@[A-Za-z0-9\-]++(?:\.[A-Za-z0-9\-]++)+", re.ASCII
)
# The look-behind comes after the first character so that the scan can skip straight to
# candidate characters; it still checks the character before the run.
_NUMBER_RUN: Final = re.compile(r"[+(\d](?<!\w.)(?:[ .\-()]{0,3}\d){6,}+\)?", re.ASCII)
_DIGIT: Final = re.compile(r"\d", re.ASCII)
# What a number run may hold besides digits; deleting it leaves the digits.
_SEPARATORS: Final = str.maketrans("", "", " .-()+")
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


def _is_date(match: re.Match[str]) -> bool:
    found = _DATE_RUN.fullmatch(match.group())
    if found is None:
        return False
    y1, _, m1, d1, d2, _, m2, y2, hour = found.groups()
    if hour is not None and match.string[match.end() : match.end() + 1] != ":":
        return False
    year, month, day = (y1, m1, d1) if y1 is not None else (y2, m2, d2)
    # Day and month order differ by locale: one plausible reading is enough.
    m, d = int(month), int(day)
    return 1000 <= int(year) <= 2999 and (
        (1 <= m <= 12 and 1 <= d <= 31) or (1 <= d <= 12 and 1 <= m <= 31)
    )


def _mask_number(match: re.Match[str]) -> str:
    run = match.group()
    digits = run.translate(_SEPARATORS)
    count = len(digits)
    if count < 7:
        return run
    # One non-digit and it is a dot: a plain decimal such as 1234567.89.
    if len(run) - count == 1 and "." in run:
        return run
    # A date has 6..8 digits, 10 with the hour of a time.
    if count <= 10 and _is_date(match):
        return run
    if 13 <= count <= 19 and luhn_valid(digits):
        return CARD
    return PHONE if count <= 15 else NUMBER


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
        text = _NUMBER_RUN.sub(_mask_number, text)
    return text


def contains_pii(text: str) -> bool:
    """Whether :func:`redact_text` would change ``text``.

    Example:
        >>> contains_pii("jo@example.com"), contains_pii("order 12345")
        (True, False)
    """
    return redact_text(text) != text
