"""Query strings taken at their word: an unknown or repeated parameter is a 422, never ignored."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import Request

from core.errors import RepeatedParameter, UnknownParameter
from core.text import displayable


def only_params(names: Iterable[str], *, repeatable: Iterable[str] = ()) -> Callable[..., None]:
    """A dependency refusing any query parameter but `names`, and repeats of all but
    `repeatable` (422 `unknown_parameter` / `repeated_parameter`, naming the parameter)."""
    known = frozenset(names)
    many = frozenset(repeatable)

    def check(request: Request) -> None:
        params = request.query_params
        for name in dict.fromkeys(params.keys()):
            if name not in known:
                takes = ", ".join(sorted(known)) or "none"
                raise UnknownParameter(name=displayable(name)[:64], accepted=takes)
            if name not in many and len(params.getlist(name)) > 1:
                raise RepeatedParameter(name=name)

    return check
