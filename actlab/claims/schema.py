"""JSON Schema validation of the config, the register and experiment parameters, with readable errors.

One validator (integers must be ints: ``32.0`` is not a width, and a bool is no number), the
same with defaults filled in (the config files), and :func:`first_problem`, which turns the most
relevant error into one line: where (a register's claims by index and id), what, and the fix
where one is known - the closest valid key for a misspelt one, ``1.0e-6`` for an exponent YAML
reads as a string, ``[relu]`` for a scalar where a list belongs.
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

import jsonschema

# PyYAML reads a float only with a dot and a signed exponent: 1e-6 and 1.0e6 stay strings.
_YAML_STRING_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")

#: Draft 2020-12 in which an integer is an int (not ``32.0``) and a bool is neither integer nor number
StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def _with_defaults(cls):
    """A validator class that fills each object's missing properties with their ``default`` (jsonschema FAQ)."""
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if validator.is_type(instance, "object"):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": properties})


def _location(error: jsonschema.ValidationError, instance: Any, root: str) -> str:
    path = list(error.absolute_path)
    text = root
    for depth, part in enumerate(path):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        if depth == 1 and path[0] == "claims" and isinstance(part, int) and isinstance(instance, dict):
            claim = instance["claims"][part]
            if isinstance(claim, dict) and "id" in claim:
                text += f" (id {claim['id']!r})"
    return text or "top level"


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, without a repr of a whole document (a register given as a list, say)."""
    if error.validator == "type":
        shown = repr(error.instance)
        shown = shown if len(shown) <= 60 else f"a {type(error.instance).__name__}"
        return f"{shown} is not of type {error.validator_value!r}"
    return error.message if len(error.message) <= 300 else error.message[:300] + "..."


def _hint(error: jsonschema.ValidationError) -> str:
    if isinstance(error.instance, str) and _YAML_STRING_FLOAT.match(error.instance):
        mantissa, exponent = re.split("[eE]", error.instance)
        fixed = (
            f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent if exponent[0] in '+-' else '+' + exponent}"
        )
        return f" (YAML reads {error.instance} as a string: write {fixed})"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        close = [difflib.get_close_matches(k, known, n=1) for k in unknown]
        suggestions = [f"{k!r} -> {c[0]!r}" for k, c in zip(unknown, close, strict=True) if c]
        if suggestions:
            return f" (did you mean {', '.join(suggestions)}?)"
        return f" (valid keys: {', '.join(known)})"
    if isinstance(error.instance, str) and error.validator == "type" and "array" in str(error.validator_value):
        return f" (write a list: [{error.instance}])"
    return ""


FillingValidator = _with_defaults(StrictValidator)


def first_problem(instance: Any, schema: dict, fill_defaults: bool = False, root: str = "") -> str | None:
    """The most relevant error of ``instance`` against ``schema`` as one line, or None if valid.

    The line starts with the key path, prefixed by ``root`` (e.g. ``"params"``). With
    ``fill_defaults``, missing properties that have a ``default`` are filled in, in place.
    """
    cls = FillingValidator if fill_defaults else StrictValidator
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(instance))
    if error is None:
        return None
    return f"{_location(error, instance, root)}: {_message(error)}{_hint(error)}"
