"""How the scrubber reads a field name: words, compact form and singular.

Case, separators, camelCase and full-width letters never matter, so ``Email``,
``E-MAIL``, ``eMail`` and ``ｅｍａｉｌ`` all read as the words ``("e", "mail")`` or
``("email",)``, whose compact form is ``email``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["compact", "has_run", "key_words", "singular"]

_WORD_SPLIT: Final = re.compile(r"[^A-Za-z0-9]+")
_CAMEL_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def key_words(key: str) -> tuple[str, ...]:
    """The lower-case words of a key, split on non-alphanumerics and camelCase.

    Example:
        >>> key_words("homeAddress_line1"), key_words("Ｅ-Mail")
        (('home', 'address', 'line', '1'), ('e', 'mail'))
    """
    key = unicodedata.normalize("NFKC", key)  # full-width letters read as ASCII
    return tuple(
        word.lower() for part in _WORD_SPLIT.split(key) for word in _CAMEL_WORD.findall(part)
    )


def compact(key: str) -> str:
    """The words of a key joined: the form keys are compared in.

    Example:
        >>> compact("Customer-ID"), compact("customerId")
        ('customerid', 'customerid')
    """
    return "".join(key_words(key))


def singular(word: str) -> str:
    """An English plural read as its singular, crudely but the same way on both sides.

    Example:
        >>> [singular(w) for w in ("addresses", "emails", "ids", "ssn", "address")]
        ['address', 'email', 'id', 'ssn', 'address']
    """
    if len(word) > 4 and word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def has_run(words: tuple[str, ...], run: tuple[str, ...]) -> bool:
    """Whether ``run`` occurs in ``words`` as consecutive words.

    Example:
        >>> has_run(("home", "phone", "number"), ("phone", "number"))
        True
    """
    size = len(run)
    return any(words[i : i + size] == run for i in range(len(words) - size + 1))
