"""The error machinery: a class per code with its status and a Chinese and an English message.

Each concrete class names its `code` (stable, what clients match on), `status_code`, the message
templates `zh` and `en` (`str.format` fields filled from the keyword arguments it is raised
with) and an `example` of those arguments. Defining such a class registers it (`REGISTRY`), so
the README's table, the OpenAPI document and the tests walk one list. Classes without a `code`
are bases (grouping by status); they are not registered and cannot be raised.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

Lang = Literal["zh", "en"]
DEFAULT_LANG: Lang = "zh"

# code -> class, in definition order (the README table's order).
REGISTRY: dict[str, type[GridgovError]] = {}


def template_fields(template: str) -> set[str]:
    """The named fields of a `str.format` template ("{chars}", "{lat:.6f}" → chars, lat)."""
    return {
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name
    }


class GridgovError(Exception):
    """Base of every error the service reports: `{"error": code, "detail": message}`."""

    code: ClassVar[str] = ""
    status_code: int = 400
    zh: ClassVar[str] = ""
    en: ClassVar[str] = ""
    # The keyword arguments the class is raised with, as an example (tests render it).
    example: ClassVar[Mapping[str, Any]] = {}
    # Template fields that `localise` computes rather than the caller passes.
    derived: ClassVar[frozenset[str]] = frozenset()
    # Seconds after which a retry may succeed; sent as the `Retry-After` header when set.
    retry_after: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            return  # a base: groups classes by status, never raised itself
        if cls.code in REGISTRY:
            raise TypeError(f"error code {cls.code!r} is declared twice")
        if not cls.zh or not cls.en or not cls.__doc__:
            raise TypeError(f"{cls.__name__} needs a docstring and both messages")
        used = template_fields(cls.zh) | template_fields(cls.en)
        unknown = used - set(cls.example) - cls.derived
        if unknown:
            raise TypeError(f"{cls.__name__}: template fields without a parameter: {unknown}")
        REGISTRY[cls.code] = cls

    def __init__(self, **params: Any) -> None:
        cls = type(self)
        if "code" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} is a base class; raise one of its codes")
        expected = set(cls.example)
        if set(params) != expected:
            raise TypeError(f"{cls.__name__} takes {sorted(expected)}, was given {sorted(params)}")
        self.params = params
        super().__init__(cls.code)

    def localise(self, lang: Lang) -> dict[str, Any]:
        """Template values that depend on the language (names of things, lists)."""
        return {}

    def message(self, lang: Lang = DEFAULT_LANG) -> str:
        template = self.zh if lang == "zh" else self.en
        return template.format(**self.params, **self.localise(lang))

    @property
    def detail(self) -> str:
        """The message in the default language (Chinese)."""
        return self.message(DEFAULT_LANG)

    def __str__(self) -> str:
        return f"{self.code}: {self.message('en')}"

    @classmethod
    def meaning(cls) -> str:
        """The first line of the class docstring: what the code means (for the README)."""
        return (cls.__doc__ or "").strip().splitlines()[0]


class ValidationFailed(GridgovError):
    """Bad input (422): nothing was changed."""

    status_code = 422


class ImportRefused(ValidationFailed):
    """A whole file refused, nothing stored; `problems` names every defect found.

    The problem lines are the checks' own words (codes, dates, coordinates; English); the
    summary around them is in the chosen language.
    """

    MAX_LISTED: ClassVar[int] = 50  # problems spelled out in the message (all are in `problems`)
    derived = frozenset({"count", "s"})

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(self.params["problems"])

    def localise(self, lang: Lang) -> dict[str, Any]:
        count = len(self.problems)
        return {"count": count, "s": "" if count == 1 else "s"}

    def summary(self, lang: Lang = DEFAULT_LANG) -> str:
        return super().message(lang)

    def message(self, lang: Lang = DEFAULT_LANG) -> str:
        listed = [f"- {p}" for p in self.problems[: self.MAX_LISTED]]
        more = len(self.problems) - self.MAX_LISTED
        if more > 0:
            listed.append(f"- … 另有 {more} 个" if lang == "zh" else f"- … and {more} more")
        return "\n".join([self.summary(lang), *listed])


class NotAuthenticated(GridgovError):
    """No valid sign-in (401)."""

    status_code = 401


class Forbidden(GridgovError):
    """Signed in, but not allowed (403)."""

    status_code = 403


class NotFound(GridgovError):
    """Nothing by that name (404)."""

    status_code = 404


class Conflict(GridgovError):
    """The current state does not allow it (409)."""

    status_code = 409


def pick_language(accept_language: str | None) -> Lang:
    """Chinese unless the `Accept-Language` header prefers English (q-values honoured).

    Only the primary tags `zh` and `en` count (`en-US` is `en`); `*` and other languages are
    ignored; a tie goes to the tag named first; `q=0` refuses a language.
    """
    best: tuple[float, Lang] | None = None
    for part in (accept_language or "").split(","):
        tag, _, rest = part.partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("zh", "en"):
            continue
        q = 1.0
        for param in rest.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if not 0.0 < q <= 1.0:
            continue
        if best is None or q > best[0]:
            best = (q, "en" if primary == "en" else "zh")
    return DEFAULT_LANG if best is None else best[1]


def language_of_locale(environ: Mapping[str, str]) -> Lang:
    """The command line's language: English when the locale (LC_ALL, LC_MESSAGES, then LANG,
    the first one set) starts with `en`; Chinese otherwise, `C` and `POSIX` included."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "en" if value.lower().startswith("en") else "zh"
    return DEFAULT_LANG
