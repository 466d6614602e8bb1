"""Text for messages and the results table: one line, bounded length, nothing quoted at length."""

from __future__ import annotations

import re

ELLIPSIS = "…"
SCRUBBED = "<value>"

# The ``user:password@`` of a URL: names, messages and logs never show it.
# Up to the last "@" of the authority, so an unencoded "@" in the password goes too.
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"]*@")

# What an endpoint address looks like: an email, a URL, a phone number, a device token.
_ADDRESS = re.compile(
    r"[^\s'\"<>(),;]+@[^\s'\"<>(),;]+"  # email
    r"|\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+"  # URL
    r"|\+?\d[\d\s().-]{6,}\d"  # phone number (or any long number)
    r"|\b[A-Za-z0-9:_-]{32,}"  # device token
)


def shortened(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def without_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it removed."""
    return _USERINFO.sub(r"\1", text)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with every run of whitespace (line breaks included) as one space and no URL userinfo, shortened."""
    return shortened(without_userinfo(" ".join(text.split())), limit)


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, shortened (its type's name when it has no message), without
    URL userinfo: enough to act on, without quoting whatever data a library put in the lines after it."""
    lines = str(error).strip().splitlines()
    return shortened(without_userinfo(lines[0]), limit) if lines else type(error).__name__


def shown(value: object, limit: int = 40) -> str:
    """A value for a message: text quoted and shortened, anything else as it prints."""
    return repr(shortened(value, limit)) if isinstance(value, str) else str(value)


def scrubbed(text: str) -> str:
    """``text`` with every value that looks like an address (email, URL, phone number, device token)
    replaced by ``<value>``: for library messages that may quote the data they choked on."""
    return _ADDRESS.sub(SCRUBBED, text)
