"""Text for messages and the results table: one line, bounded length, nothing quoted at length."""

from __future__ import annotations

ELLIPSIS = "…"


def shortened(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with every run of whitespace (line breaks included) as one space, then shortened."""
    return shortened(" ".join(text.split()), limit)


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, shortened (its type's name when it has no message):
    enough to act on, without quoting whatever data a library put in the lines after it."""
    lines = str(error).strip().splitlines()
    return shortened(lines[0], limit) if lines else type(error).__name__


def shown(value: object, limit: int = 40) -> str:
    """A value for a message: text quoted and shortened, anything else as it prints."""
    return repr(shortened(value, limit)) if isinstance(value, str) else str(value)
