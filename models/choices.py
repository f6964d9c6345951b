"""`Choice`: the base of every config field with a closed set of values (mixer type, backend, ...).

A field typed with a `Choice` subclass is checked by OmegaConf when the config is composed: a typo
fails before any data is prepared or model built, on every rank, with the valid values listed.
Members are named exactly as their values (what YAML and the command line spell:
`model.mixers.gdn.backend=torch`), and a member equals, prints, formats and reprs as its value, so code
comparing a field to a string keeps working; saved configs hold plain strings
(`OmegaConf.to_container(..., enum_to_str=True)`).
"""

from __future__ import annotations

from enum import Enum

from models.errors import UserError


class Choice(str, Enum):
    """A closed set of config strings; subclass it with members `name = "name"`."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:  # error messages quote `{value!r}`: show what the user typed
        return repr(self.value)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The valid spellings, in declaration order."""
        return tuple(member.value for member in cls)

    @classmethod
    def parse(cls, value: object, key: str):
        """`value` as a member; for configs built in Python, which OmegaConf never checked."""
        if value not in cls.values():
            raise UserError(f"{key}={value!r} is unknown; use one of {', '.join(cls.values())}.")
        return cls(value)
