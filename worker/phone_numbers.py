"""Phone numbers as the store keeps them: E.164 (``+15551234567``).

One rule for the two places a number arrives: the Azure migration (legacy rows are formatted:
``(555) 123-4567``, ``555.123.4567``) and the voice agent's lookup of a caller
(``worker.repositories``), so a number typed either way finds the customer it was stored for.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d+")
_FORMATTING = re.compile(r"[\s().\-/]")


def to_e164(number: str) -> str | None:
    """``number`` in E.164, or None when it is not a phone number that maps to it. Ten digits
    are a North American number (+1), eleven starting with 1 as well: the only numbering plan
    the legacy agent called; a ``+`` number of 8 to 15 digits is kept as it is."""
    compact = _FORMATTING.sub("", number.strip())
    if compact.startswith("+"):
        digits = compact[1:]
        if _DIGITS.fullmatch(digits) and 8 <= len(digits) <= 15 and not digits.startswith("0"):
            return "+" + digits
    elif _DIGITS.fullmatch(compact):
        if len(compact) == 10 and compact[0] not in "01":
            return "+1" + compact
        if len(compact) == 11 and compact.startswith("1") and compact[1] not in "01":
            return "+" + compact
    return None
