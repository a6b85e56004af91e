"""What can go wrong: a delivery that failed, and settings that cannot build a sender."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class DeliveryError(Exception):
    """Sending failed.

    `permanent` True means retrying cannot help (invalid address, number refused); False means
    try again later (server down, timeout, 4xx, a configuration problem). `reason` is short and
    holds no personal data (no address, number or message text): it is stored and shown to staff.
    """

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent

    def __repr__(self) -> str:
        return f"DeliveryError({self.reason!r}, permanent={self.permanent})"


# Settings arrive as a plain mapping; values set through PRO_* variables may still be strings.


def text_setting(config: Mapping[str, Any], key: str, *, needed_for: str | None = None) -> str:
    """A non-empty string setting; ValueError naming the key when it is missing."""
    value = config.get(key)
    if value is None or str(value).strip() == "":
        purpose = f" (needed for {needed_for})" if needed_for else ""
        raise ValueError(f"{key} is not set{purpose}")
    return str(value).strip()


def optional_text_setting(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def flag_setting(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key, False)
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{key} must be true or false, not {value!r}")


def number_setting(config: Mapping[str, Any], key: str, default: float) -> float:
    """A positive number (seconds, port); the default when unset."""
    value = config.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, not {value!r}") from None
    if number <= 0:
        raise ValueError(f"{key} must be greater than zero, not {value!r}")
    return number
