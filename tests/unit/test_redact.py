"""redact_text: e-mails, phones and cards masked in free text; dates, decimals and ids kept."""

from __future__ import annotations

import pytest

from stream_app.inference.redact import luhn_valid, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # e-mail addresses
        ("mail jo@example.com now", "mail [EMAIL] now"),
        ("x.y+tag@sub.example.co.uk!", "[EMAIL]!"),
        ("O'Brien.{x}@A-B.IO", "[EMAIL]"),
        ("5551234567@example.com", "[EMAIL]"),
        # phone numbers: 7..15 digits with + space - . ( )
        ("call +1 (555) 123-4567 today", "call [PHONE] today"),
        ("555-123-4567", "[PHONE]"),
        ("555.123.4567", "[PHONE]"),
        ("5551234567", "[PHONE]"),
        ("+44 20 7946 0958.", "[PHONE]."),
        ("(555)1234567", "[PHONE]"),
        ("tel:5551234567", "tel:[PHONE]"),
        ("Tel.5551234567", "Tel.[PHONE]"),
        ("ring 123-4567", "ring [PHONE]"),
        ("+123456789012345", "[PHONE]"),
        ("5551234567ext", "[PHONE]ext"),
        # card numbers: 13..19 digits passing Luhn
        ("4111 1111 1111 1111", "[CARD]"),
        ("4111-1111-1111-1111", "[CARD]"),
        ("4111111111111111", "[CARD]"),
        ("378282246310005", "[CARD]"),
        ("6011 0009 9013 9424 124", "[CARD]"),
        ("4222222222222", "[CARD]"),
        # long runs that are not cards are masked anyway
        ("4111 1111 1111 1112", "[NUMBER]"),
        ("6011 0009 9013 9424 123", "[NUMBER]"),
        ("555-123-4567 555-987-6543", "[NUMBER]"),
        # kept: short numbers, decimals, dates and times, ids glued to letters
        ("order 12345", "order 12345"),
        ("123456", "123456"),
        ("total 1234567.89 EUR", "total 1234567.89 EUR"),
        ("0.5551234567", "0.5551234567"),
        ("1,234,567", "1,234,567"),
        ("2026-01-31", "2026-01-31"),
        ("2026-01-31T12:00:00.123456+01:00", "2026-01-31T12:00:00.123456+01:00"),
        ("2026-01-31 12:00:00", "2026-01-31 12:00:00"),
        ("on 31.01.2026 14:30", "on 31.01.2026 14:30"),
        ("01/31/2026", "01/31/2026"),
        ("12:30:45", "12:30:45"),
        ("USR5551234567", "USR5551234567"),
        ("order_5551234567", "order_5551234567"),
        ("hex deadbeef12345678", "hex deadbeef12345678"),
        # not dates after all
        ("2024-13-45", "[PHONE]"),
        ("2026-01-31 555", "[PHONE]"),
        # phone numbers glued to a word that names them; ids glued to other words stay
        ("tel5551234567", "tel[PHONE]"),
        ("Tel5551234567", "Tel[PHONE]"),
        ("phone_5551234567", "phone_[PHONE]"),
        ("PHONE_555-123-4567", "PHONE_[PHONE]"),
        ("ph:5551234567", "ph:[PHONE]"),
        ("mobile5551234567 or fax_5551234568", "mobile[PHONE] or fax_[PHONE]"),
        ("telno5551234567", "telno[PHONE]"),
        ("cellphone+15551234567", "cellphone[PHONE]"),
        ("hotel5551234567", "hotel5551234567"),
        ("USR555 1234567", "USR555 [PHONE]"),
        ("USR5551234567 555", "USR5551234567 555"),
        # e-mail addresses with a non-ASCII local part or domain are masked whole
        ("mail jöe@example.com now", "mail [EMAIL] now"),
        ("joe@exämple.com", "[EMAIL]"),
        ("josé.garcía@correo.españa.es,", "[EMAIL],"),
        ("用户@例子.广告", "[EMAIL]"),
        ("почта: иван@пример.рф.", "почта: [EMAIL]."),
        ("joe@localhost", "joe@localhost"),
        # any Unicode decimal digits count, and Unicode dashes and spaces separate
        ("call ５５５１２３４５６７", "call [PHONE]"),
        ("call ５５５－１２３－４５６７", "call [PHONE]"),
        ("４１１１ １１１１ １１１１ １１１１", "[CARD]"),
        ("٥٥٥١٢٣٤٥٦٧", "[PHONE]"),
        ("555\u2013123\u20134567", "[PHONE]"),
        ("+44\u00a020\u00a07946\u00a00958", "[PHONE]"),
        ("２０２６-０１-３１", "２０２６-０１-３１"),
        ("order １２３４５", "order １２３４５"),
        # a dot inside seven digits: 3 + 4 is the local phone shape, any other split a decimal
        ("555.1234", "[PHONE]"),
        ("call 555.1234 today", "call [PHONE] today"),
        ("5551.234", "5551.234"),
        ("55.51234", "55.51234"),
        ("1234.5678", "1234.5678"),
        ("3.1415926", "3.1415926"),
        ("555.12345", "555.12345"),
        # not an e-mail address
        ("a@b", "a@b"),
        ("@handle", "@handle"),
        ("", ""),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4012888888881881", True),
        ("378282246310005", True),
        ("79927398713", True),
        ("79927398710", False),
        ("4111111111111112", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid
