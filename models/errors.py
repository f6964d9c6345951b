"""The project's one exception type for bad user input, and the entry points' way of reporting it.

Every check of something a user controls (a config value, a path, a file's contents) raises
`UserError` with one sentence naming the bad value and the fix. Entry points catch `UserError` only
and print `error: <sentence>` with exit status 1; any other exception, a `ValueError` raised inside
torch, pandas or numpy included, is a bug and keeps its traceback. `UserError` subclasses
`ValueError` so callers that catch `ValueError` keep working.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
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
