"""E-mail addresses and Italian mobile numbers: validated and put in one canonical form."""

from __future__ import annotations

import re

# The usual address syntax (RFC 5322 "dot-atom" local part, letter-digit-hyphen domain labels):
# nothing that could carry markup or a second address.
EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
MAX_EMAIL_LENGTH = 254
# Italian mobiles: optional +39/0039, then a 3xx number of 9-10 digits; spaces and dashes allowed.
ITALIAN_MOBILE = re.compile(r"^(?:\+39|0039)?3\d{8,9}$")


def normalize_email(value: str | None) -> str | None:
    """The address lower-cased and trimmed, or None when empty or malformed."""
    value = (value or "").strip().lower()
    return value if value and len(value) <= MAX_EMAIL_LENGTH and EMAIL.match(value) else None


def normalize_mobile(value: str | None) -> str | None:
    """An Italian mobile number as +39 followed by digits, or None when empty or malformed."""
    digits = re.sub(r"[\s\-./()]", "", value or "")
    if not digits or not ITALIAN_MOBILE.match(digits):
        return None
    return "+39" + re.sub(r"^(\+39|0039)", "", digits)
