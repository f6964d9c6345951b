"""From a `mixers:` entry as YAML spells it to its kind's typed config (`models.mixers.MIXER_CONFIGS`).

OmegaConf cannot type a field as a union of dataclasses, so Hydra composes every entry as a
`MixerEntry`: the union of all kinds' fields, each `None` until set, generated from the registry (a
new mixer adds nothing here). That keeps compose-time checking of every field's name and type and
lets the command line set any field without `+`. `mixer_from_entry` then picks the kind by the
entry's required `type` and refuses a field the kind does not have, in one line naming the mixer,
the field and the kind's fields.

`mixer_defaults` (`ModelConfig.mixer_defaults`) hold per-kind values for the fields an entry leaves
unset, so an experiment can tune one kind (`{gated_deltanet: {a_log_max: 0.01}}`) in every model
without creating that mixer where the model has none.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from models.errors import UserError, did_you_mean
from models.mixers import MIXER_CONFIGS, MixerConfig

KINDS = tuple(MIXER_CONFIGS)


def kind_fields(kind: str) -> list[str]:
    """The field names of one mixer kind's config, in declaration order."""
    return [f.name for f in dataclasses.fields(MIXER_CONFIGS[kind])]


def _entry_fields() -> list[tuple[str, Any, dataclasses.Field]]:
    """(name, Optional type, default None) of `type` and every field of every kind; `Any` where kinds disagree."""
    hints: dict[str, Any] = {}
    for cls in MIXER_CONFIGS.values():
        own = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hints[f.name] = own[f.name] if hints.get(f.name, own[f.name]) == own[f.name] else Any
    return [
        (name, Optional[hint], dataclasses.field(default=None))  # noqa: UP045 (a runtime type for OmegaConf)
        for name, hint in {"type": str, **hints}.items()
    ]


MixerEntry = dataclasses.make_dataclass(
    "MixerEntry",
    _entry_fields(),
    namespace={"__doc__": "A `mixers:` entry as composed: `type` and any kind's fields, None when unset."},
)
MixerEntry.__module__ = __name__


def _typed(where: str, cls: type[MixerConfig], *layers: Any) -> MixerConfig:
    """`cls` built from `layers` merged in order, with OmegaConf's checks of names, types and choices;
    its errors become one-line `UserError`s naming `where`."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), *layers))
    except OmegaConfBaseException as error:
        key = f".{error.full_key}" if getattr(error, "full_key", None) else ""
        raise UserError(f"{where}{key}: {str(error).splitlines()[0]}; fix that value.") from None


def _check_fields(where: str, kind: str, names: typing.Iterable[str]) -> None:
    own = kind_fields(kind)
    for name in names:
        if name not in own:
            owners = [k for k in KINDS if name in kind_fields(k)]
            belongs = f" (a field of {', '.join(owners)})" if owners else ""
            raise UserError(
                f"{where}: {kind} has no field {name!r}{belongs}; {did_you_mean(name, own)}"
                f"{kind}'s fields are {', '.join(own)}."
            )


def check_mixer_defaults(defaults: dict[str, dict]) -> None:
    """Every key of `mixer_defaults` is a kind and every value one of that kind's fields, well typed."""
    for kind, values in defaults.items():
        if kind not in KINDS:
            raise UserError(
                f"model.mixer_defaults: {kind!r} is not a mixer kind; {did_you_mean(kind, KINDS)}"
                f"use one of {', '.join(KINDS)}."
            )
        _check_fields(f"model.mixer_defaults.{kind}", kind, values)
        _typed(f"model.mixer_defaults.{kind}", MIXER_CONFIGS[kind], values)


def mixer_from_entry(name: str, entry: Any, defaults: dict[str, dict]) -> MixerConfig:
    """The typed config of mixer `name` from a `MixerEntry`, a plain dict or an already typed config.

    Unset fields of an entry take `defaults[kind]`, then the kind's own defaults; a typed config is
    taken as complete (its fields were all set when it was built).
    """
    where = f"mixer {name!r}"
    if isinstance(entry, MixerConfig):
        return _typed(where, type(entry), entry)
    values = dataclasses.asdict(entry) if dataclasses.is_dataclass(entry) else dict(entry)
    values = {key: value for key, value in values.items() if value is not None}
    kind = values.pop("type", None)
    if kind is None:
        raise UserError(f"{where} has no type: set model.mixers.{name}.type to one of {', '.join(KINDS)}.")
    if kind not in KINDS:
        raise UserError(
            f"{where}: type={kind!r} is not a mixer kind; {did_you_mean(kind, KINDS)}use one of {', '.join(KINDS)}."
        )
    _check_fields(where, kind, values)
    return _typed(where, MIXER_CONFIGS[kind], defaults.get(kind, {}), values)
