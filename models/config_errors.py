"""Hydra's and OmegaConf's config errors as one `error:` line, shared by every Hydra entry point.

Left to itself, Hydra answers a config a user got wrong (an unknown config name, a misspelt key, a
value outside a field's closed set, a config group that must be chosen) with a multi-line report:
every option of the group, the config search path, "Set the environment variable
HYDRA_FULL_ERROR=1 ...". Each entry point (`python -m train`, `train.prepare`, `eval`) wraps its
`@hydra.main` function in `one_line_config_errors`, which lets Hydra raise instead (HYDRA_FULL_ERROR=1
for the call) and prints one sentence naming the key, the bad value and the closest valid ones
(difflib), exit status 1. A `UserError` anywhere in the error's chain (a config's `__post_init__`
check) is reported as its own sentence. Any other exception is a bug and keeps its full traceback;
a user who sets HYDRA_FULL_ERROR=1 gets Hydra's own report, as Hydra documents.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable

from hydra.errors import HydraException, InstantiationException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError
from omegaconf.nodes import EnumNode

from models.errors import USER_ERROR_EXIT_CODE, UserError

FULL_ERROR = "HYDRA_FULL_ERROR"
SCHEMA_SUFFIX = "_schema"  # structured-config schemas in the ConfigStore, not options a user picks
SHOWN_OPTIONS = 3


def closest(value: str, options: Iterable[str], n: int = SHOWN_OPTIONS) -> list[str]:
    """The `n` options most like `value` (difflib's similarity ratio), most alike first."""
    return difflib.get_close_matches(str(value), list(options), n=n, cutoff=0.0)


def _user_error_in_chain(error: BaseException | None) -> UserError | None:
    """The `UserError` itself, or the one a Hydra / OmegaConf error wraps (OmegaConf keeps it only
    as the context); a `UserError` behind any other exception stays that exception's business."""
    while error is not None:
        if isinstance(error, UserError):
            return error
        if not isinstance(error, (HydraException, OmegaConfBaseException)):
            return None
        error = error.__cause__ or error.__context__
    return None


def _closest_text(what: str, value: str, options: Iterable[str], prefix: str = "") -> str:
    close = closest(value, options)
    return f"; the closest valid {what} are {', '.join(prefix + c for c in close)}" if close else ""


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0].rstrip(".")


def _user_options(options: Iterable[str]) -> list[str]:
    return [o for o in options if not o.endswith(SCHEMA_SUFFIX)]


def _missing_config(error: MissingConfigException) -> str:
    """`model=tiny_hybird`: no such config in the group."""
    group, _, name = error.missing_cfg_file.rpartition("/")
    if not group:
        return f"there is no config named {name!r}; {_first_line(error)}."
    options = _user_options(error.options or [])
    return f"{group}={name}: there is no such {group} config{_closest_text('ones', name, options)}."


def _omegaconf_sentence(error: OmegaConfBaseException) -> str:
    """A key or value OmegaConf refused, named by its full key."""
    key = getattr(error, "full_key", None) or getattr(error, "key", None) or ""
    value = getattr(error, "value", None)
    parent = getattr(error, "parent_node", None)
    if isinstance(error, (ConfigKeyError, ConfigAttributeError)) and isinstance(parent, DictConfig):
        prefix, _, name = str(key).rpartition(".")
        known = _closest_text("keys", name, map(str, parent.keys()), f"{prefix}." if prefix else "")
        return f"{key} is not a config key{known}."
    child = getattr(error, "child_node", None)
    if isinstance(error, ValidationError) and isinstance(child, EnumNode):
        return f"{key}={value} is not a valid value{_closest_text('values', value, child.enum_type.__members__)}."
    setting = f"{key}={value}: " if key and value is not None else f"{key}: " if key else ""
    return f"{setting}{_first_line(error)}; fix that key or value."


def _hydra_sentence(error: HydraException) -> str:
    """A Hydra composition error with no OmegaConf error behind it, as one line."""
    text = str(error)
    must_choose = re.match(r"You must specify '([^']+)'", text)
    if must_choose:
        group = must_choose[1]
        listed = re.findall(r"^\t(\S+)$", text, re.M)
        return (
            f"{group} has no default in this config: add {group}=NAME to the command, NAME one of "
            f"{', '.join(_user_options(listed))} (conf/{group}/)."
        )
    lines = [line.strip().rstrip(".") for line in text.split("Config search path:")[0].splitlines()]
    return "; ".join(line for line in lines if line) + "."


def config_error_sentence(error: BaseException) -> str | None:
    """One sentence for a config error (Hydra's, OmegaConf's or a `UserError`); None for a bug."""
    user_error = _user_error_in_chain(error)
    if user_error is not None:
        return str(user_error)
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        return _missing_config(error)
    if isinstance(error, InstantiationException):  # a `_target_`'s constructor failed: maybe a bug
        return None
    if isinstance(error, OmegaConfBaseException):
        return _omegaconf_sentence(error)
    if isinstance(error, HydraException):
        cause = error.__cause__
        in_file = re.match(r"Error merging '([^']+)'", str(error))  # a config file, not an override
        where = f"conf/{in_file[1]}.yaml: " if in_file and "=" not in in_file[1] else ""
        if isinstance(cause, OmegaConfBaseException):
            return where + _omegaconf_sentence(cause)
        return _hydra_sentence(error)
    return None


def one_line_config_errors(hydra_main: Callable[[], None]) -> Callable[[], None]:
    """Wrap a `@hydra.main` function: a config error ends in one `error:` line and exit status 1."""

    @functools.wraps(hydra_main)
    def main() -> None:
        if os.environ.get(FULL_ERROR) == "1":  # the user asked for Hydra's complete report
            hydra_main()
            return
        before = os.environ.get(FULL_ERROR)
        os.environ[FULL_ERROR] = "1"  # Hydra re-raises instead of printing its report
        try:
            hydra_main()
        except Exception as error:
            sentence = config_error_sentence(error)
            if sentence is None:
                raise
            print(f"error: {sentence}", file=sys.stderr)
            sys.exit(USER_ERROR_EXIT_CODE)
        finally:
            if before is None:
                os.environ.pop(FULL_ERROR, None)
            else:
                os.environ[FULL_ERROR] = before

    return main
