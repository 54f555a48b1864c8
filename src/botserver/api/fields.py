"""String types for what clients send: text that every database can store.

PostgreSQL refuses the NUL character in text, even in a lookup, and SQLite
would store it and hand it back to clients that read it as the end of a
string. Request models, login-form fields and socket frames therefore refuse
it where they are parsed, as a VALIDATION_ERROR naming the field: request
bodies through `RequestModel`, single parameters through `Text`, frames in
`api/ws.py`, and paths and query strings for every request in
`NulRefusalMiddleware`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, field_validator
from pydantic_core import PydanticCustomError

NUL = "\x00"
NUL_ERROR = "string_nul"
NUL_MESSAGE = "Text must not contain NUL characters."


def refuse_nul(value: object) -> object:
    """Checked before the string's own constraints, so those keep their usual wording."""
    if isinstance(value, str) and NUL in value:
        raise PydanticCustomError(NUL_ERROR, NUL_MESSAGE)
    return value


Text = Annotated[str, BeforeValidator(refuse_nul)]


class RequestModel(BaseModel):
    """A request body: no string field may hold a NUL, whatever its other constraints."""

    # A field validator wraps each field's whole schema, so the fields' own
    # constraints (lengths, stripping) keep their usual checks and wording.
    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: object) -> object:
        return refuse_nul(value)


def nul_field(field: str) -> dict[str, str]:
    """One entry of a VALIDATION_ERROR's `fields`, as request validation words it."""
    return {"field": field, "message": NUL_MESSAGE, "type": NUL_ERROR}


def fields_with_nul(values: Mapping[str, object]) -> list[str]:
    """The names of the values in `values` that hold a NUL somewhere inside."""
    return [str(key) for key, value in values.items() if _has_nul(value)]


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, Mapping):
        return any(_has_nul(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False
