"""The project's one exception type for bad user input, and the entry points' way of reporting it.

Every check of something a user controls (a config value, a path, a file's contents) raises
`UserError` with one sentence naming the bad value and the fix. Entry points catch `UserError` only
and print `error: <sentence>` with exit status 1; any other exception, a `ValueError` raised inside
torch, pandas or numpy included, is a bug and keeps its traceback. `UserError` subclasses
`ValueError` so callers that catch `ValueError` keep working.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

USER_ERROR_EXIT_CODE = 1


class UserError(ValueError):
    """Bad input a user can fix; the message is one sentence naming the value and the fix."""


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn a `UserError` into `error: ...` on stderr and exit status 1; let everything else through."""
    try:
        yield
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT_CODE)


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """`"did you mean 'x'? "` for the option closest to a misspelt `value`, or `""` when none is close."""
    close = difflib.get_close_matches(str(value), list(options), n=1)
    return f"did you mean {close[0]!r}? " if close else ""
