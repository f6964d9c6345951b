"""Entry points report a `UserError` as one `error:` line with exit 1, and let every other error through."""

from __future__ import annotations

import pytest

from models.errors import UserError, exit_on_user_error


def test_a_user_error_becomes_one_line_and_exit_1(capsys) -> None:
    with pytest.raises(SystemExit) as stop, exit_on_user_error():
        raise UserError("data.path=x does not exist; prepare it first.")
    assert stop.value.code == 1
    assert capsys.readouterr().err == "error: data.path=x does not exist; prepare it first.\n"


@pytest.mark.parametrize("error", [ValueError("from numpy"), KeyError("k"), RuntimeError("from torch")])
def test_any_other_error_is_a_bug_and_propagates(capsys, error: Exception) -> None:
    with pytest.raises(type(error)), exit_on_user_error():
        raise error
    assert capsys.readouterr().err == ""


def test_user_error_is_a_value_error() -> None:
    assert issubclass(UserError, ValueError)  # callers catching ValueError keep working
