"""Builtin conversion for vrrpfw's options on typer releases that convert
every option value through pydantic.

typer 0.2x builds, at parse time, a pydantic ``TypeAdapter`` for each
option that takes a value: importing that machinery costs 100-200 ms on
every run (measured with typer 0.29.2 on Python 3.13), which alone breaks
vrrpfw's start-up budget (``check`` within 4x ``iptables -C``) on the
newest libraries.  vrrpfw's options are only ``str``, ``int``, ``float``,
``bool``, str-valued Enums (an option with a fixed set of values) and
lists or optionals of those, which Python converts as well as pydantic
does; this gives such parameters a plain converter before the command
runs.  On older typer (no ``typer._coercion``) click converts by itself
and nothing is done; an annotation not recognised here keeps
typer's own conversion.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, Optional

_PLAIN = (str, int, float, bool)


def _base(annotation: Any) -> Optional[type]:
    """str/int/float/bool or an Enum behind Optional[...] and List[...]/Sequence[...]."""
    while True:
        if annotation in _PLAIN or (isinstance(annotation, type) and issubclass(annotation, enum.Enum)):
            return typing.cast(type, annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        origin = typing.get_origin(annotation)
        if origin is None or len(args) != 1:
            return None
        annotation = args[0]


def plain_coercion(command: Any) -> None:
    """Give every option of ``command`` (and its subcommands) whose type is
    plain a builtin converter instead of typer's pydantic one."""
    try:
        from typer._click.core import Context
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:
        return

    @dataclasses.dataclass(frozen=True)
    class Plain(RuntimeParam):  # type: ignore[misc,valid-type]
        convert: Any = str

        def _one(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, self.convert) and not (self.convert is int and isinstance(value, bool)):
                return value
            if self.convert is not bool:
                try:
                    return self.convert(value)
                except (TypeError, ValueError, OverflowError):
                    pass
            if issubclass(self.convert, enum.Enum):  # click's words for a bad choice
                choices = ", ".join(repr(m.value) for m in self.convert)
                raise BadParameter(f"{value!r} is not one of {choices}.", ctx=ctx, param=param)
            raise BadParameter(f"{value!r} is not a valid {self.convert.__name__}.", ctx=ctx, param=param)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, (list, tuple)):
                return [self._one(v, param, ctx) for v in value]
            return self._one(value, param, ctx)

    for cmd in [command, *getattr(command, "commands", {}).values()]:
        helper = cmd.get_help_option(Context(cmd, info_name=cmd.name))  # made once, then cached
        for param in [*cmd.params, *([helper] if helper is not None else [])]:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None or getattr(param, "_runtime_param", True) is not None:
                continue
            base = _base(descriptor.annotation)
            if base is not None:
                param._runtime_param = Plain(parameter_info=descriptor.parameter_info,
                                             annotation=descriptor.annotation, convert=base)
