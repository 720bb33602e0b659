"""The case taxonomy: 17 fixed top-level categories, their subcategories, owners and time limits.

The default catalogue ships as JSON inside the package; an administrator may import another one
(`gridgov taxonomy import`), which goes through `parse_catalogue` and the same validation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from enum import StrEnum
from functools import cache
from importlib import resources
from itertools import pairwise
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

_DEFAULT_RESOURCE = ("taxonomy", "data/catalogue.json")
_DEFAULT_ITEMS = "data/items.json"


class TimeUnit(StrEnum):
    """How a time limit is counted: wall-clock hours, office hours, or working days."""

    NATURAL_HOURS = "natural_hours"
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"


class Urgency(StrEnum):
    """How fast a subcategory must be handled; emergencies are counted in natural hours."""

    NORMAL = "normal"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class _Frozen(BaseModel):
    """Catalogue objects are shared (cached) and must not be mutated; unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class TimeLimit(_Frozen):
    """The handling deadline, counted from dispatch."""

    value: int = Field(gt=0)
    unit: TimeUnit


class AreaDepartment(_Frozen):
    """Within this town or village (its area code), another unit is responsible."""

    area_code: str = Field(pattern=r"^[0-9]{9}([0-9]{3})?$")
    department_code: str = Field(min_length=1)


class Item(_Frozen):
    """An item (条) of a subcategory: a concrete kind of event, when a report of it is
    registered (立案条件) and when it may be closed (结案条件); its unit, urgency and limit
    when they differ from the subcategory's, and the areas where another unit answers for it."""

    code: str = Field(pattern=r"^[0-9]{7}$")
    name: str = Field(min_length=1)
    filing_condition: str = Field(min_length=1)
    closing_condition: str = Field(min_length=1)
    department_code: str | None = None
    urgency: Urgency | None = None
    time_limit: TimeLimit | None = None
    # Stage limits (working hours) when they differ from the service's settings
    # (GRIDGOV_ACCEPT_LIMIT_HOURS, GRIDGOV_VERIFY_LIMIT_HOURS): 签收 by the unit, 核查 by the
    # grid worker.
    accept_hours: float | None = Field(default=None, gt=0, le=720)
    verify_hours: float | None = Field(default=None, gt=0, le=720)
    area_departments: tuple[AreaDepartment, ...] = ()

    def department_in(self, grid_code: str) -> str | None:
        """The unit answering for this item in the grid's village or town (the village's
        override first), else the item's own (None: the subcategory's)."""
        for area in self.area_departments:
            if grid_code.startswith(area.area_code) and len(area.area_code) == 12:
                return area.department_code
        for area in self.area_departments:
            if grid_code.startswith(area.area_code):
                return area.department_code
        return self.department_code

    @model_validator(mode="after")
    def _check_areas(self) -> Item:
        codes = [a.area_code for a in self.area_departments]
        if len(codes) != len(set(codes)):
            raise ValueError(f"item {self.code}: an area is named twice in area_departments")
        return self


class Subcategory(_Frozen):
    """A subcategory: code = category code + 2-digit serial, with its keywords, owner and
    items (条)."""

    code: str = Field(pattern=r"^[0-9]{4}$")
    name: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()
    department_code: str = Field(min_length=1)
    urgency: Urgency = Urgency.NORMAL
    time_limit: TimeLimit
    items: tuple[Item, ...] = ()

    @field_validator("keywords")
    @classmethod
    def _check_keyword_bars(cls, keywords: tuple[str, ...]) -> tuple[str, ...]:
        """A spreadsheet keeps a subcategory's keywords in one cell joined with "|", so a
        keyword containing "|" would come back split in two: refuse it, and a round trip
        through a spreadsheet is lossless."""
        for keyword in keywords:
            if "|" in keyword:
                raise ValueError(f'keyword {keyword!r} must not contain "|"')
        return keywords

    @model_validator(mode="after")
    def _check_keywords(self) -> Subcategory:
        """Keywords are non-blank, so the classifier never indexes an empty string; item codes
        are the subcategory's code and a 3-digit serial, each once."""
        if any(not k.strip() for k in self.keywords):
            raise ValueError(f"subcategory {self.code}: keywords must not be blank")
        seen: set[str] = set()
        for item in self.items:
            if not item.code.startswith(self.code):
                raise ValueError(
                    f"item {item.code} ({item.name}) does not start with its subcategory code "
                    f"{self.code}"
                )
            if item.code in seen:
                raise ValueError(f"duplicate item code {item.code}")
            seen.add(item.code)
        return self

    def item(self, code: str) -> Item | None:
        """The item (条) with this code, or None."""
        return next((i for i in self.items if i.code == code), None)

    def departments(self) -> set[str]:
        """Every unit this subcategory and its items name."""
        out = {self.department_code}
        for item in self.items:
            if item.department_code:
                out.add(item.department_code)
            out |= {a.department_code for a in item.area_departments}
        return out

    @property
    def is_catch_all(self) -> bool:
        """A catch-all ("其他…") subcategory collects what no specific one covers."""
        return self.name.startswith("其他")


# Escalation levels: who is told, up the hierarchy (grid → 村居 → 镇街 → district).
VILLAGE_LEVEL, TOWN_LEVEL, DISTRICT_LEVEL = 1, 2, 3


class EscalationStep(_Frozen):
    """One rung of a ladder: the case reaches `level` (1 村居, 2 镇街, 3 district) once this
    fraction of its time limit has passed after the deadline (0: as it turns red)."""

    past_due: float = Field(ge=0.0, le=100.0)
    level: int = Field(ge=VILLAGE_LEVEL, le=DISTRICT_LEVEL)


class EscalationLadders(_Frozen):
    """Per urgency, the rungs a case past its deadline climbs (督办 by the level above): data,
    so a district sets how fast an urgent case reaches its 镇街 without a release."""

    normal: tuple[EscalationStep, ...] = Field(min_length=1)
    urgent: tuple[EscalationStep, ...] = Field(min_length=1)
    emergency: tuple[EscalationStep, ...] = Field(min_length=1)

    @field_validator("normal", "urgent", "emergency")
    @classmethod
    def _check_order(cls, steps: tuple[EscalationStep, ...]) -> tuple[EscalationStep, ...]:
        """A ladder only climbs, and each rung comes later than the one before: otherwise a
        rung could never be reached, or "exactly once per level" would be ambiguous."""
        for before, after in pairwise(steps):
            if after.level <= before.level:
                raise ValueError(
                    f"levels must strictly increase: level {after.level} comes after "
                    f"level {before.level}"
                )
            if after.past_due <= before.past_due:
                raise ValueError(
                    f"each step must come later than the one before: past_due {after.past_due} "
                    f"(level {after.level}) is not after {before.past_due} (level {before.level})"
                )
        return steps

    def for_urgency(self, urgency: str) -> tuple[EscalationStep, ...]:
        """The ladder of a case's urgency; an unknown one (a value from an older catalogue)
        climbs the normal ladder rather than none."""
        if urgency == Urgency.URGENT:
            return self.urgent
        if urgency == Urgency.EMERGENCY:
            return self.emergency
        return self.normal


@cache
def default_escalation() -> EscalationLadders:
    """The packaged catalogue's ladders: also those of a catalogue (an older revision or
    export) that names none."""
    return EscalationLadders.model_validate(_default_document()["escalation"])


class Category(_Frozen):
    """A top-level category (two-digit code) and its subcategories."""

    code: str = Field(pattern=r"^[0-9]{2}$")
    name: str = Field(min_length=1)
    subcategories: tuple[Subcategory, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_prefixes(self) -> Category:
        """Every subcategory code starts with its category code."""
        for sub in self.subcategories:
            if not sub.code.startswith(self.code):
                raise ValueError(
                    f"subcategory {sub.code} ({sub.name}) does not start with "
                    f"its category code {self.code}"
                )
        return self


class Catalogue(_Frozen):
    """A whole taxonomy; category and subcategory codes are unique across it."""

    version: int = Field(default=1, ge=1)
    escalation: EscalationLadders = Field(default_factory=default_escalation)
    categories: tuple[Category, ...] = Field(min_length=1)

    # The stored revision this catalogue was loaded from (0: the packaged one). Not part of the
    # document: the database numbers the revisions; cases record the one they were routed by.
    _revision: int = PrivateAttr(default=0)
    _categories: dict[str, Category] = PrivateAttr(default_factory=dict)
    _subcategories: dict[str, Subcategory] = PrivateAttr(default_factory=dict)
    _parent: dict[str, Category] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_unique(self) -> Catalogue:
        """Duplicate codes would make lookups and dispatch ambiguous."""
        seen_cat: set[str] = set()
        seen_sub: set[str] = set()
        for cat in self.categories:
            if cat.code in seen_cat:
                raise ValueError(f"duplicate category code {cat.code}")
            seen_cat.add(cat.code)
            for sub in cat.subcategories:
                if sub.code in seen_sub:
                    raise ValueError(f"duplicate subcategory code {sub.code}")
                seen_sub.add(sub.code)
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Build the code lookups once; the model is frozen, so they never go stale."""
        for cat in self.categories:
            self._categories[cat.code] = cat
            for sub in cat.subcategories:
                self._subcategories[sub.code] = sub
                self._parent[sub.code] = cat

    @property
    def revision(self) -> int:
        return self._revision

    def as_revision(self, revision: int) -> Catalogue:
        """This catalogue as stored revision `revision` (a copy: catalogues are shared)."""
        copy = self.model_copy()
        copy._revision = revision
        return copy

    def category(self, code: str) -> Category | None:
        """The category with this two-digit code, or None."""
        return self._categories.get(code)

    def subcategory(self, code: str) -> Subcategory | None:
        """The subcategory with this four-digit code, or None."""
        return self._subcategories.get(code)

    def category_of(self, sub_code: str) -> Category:
        """The category a subcategory belongs to; KeyError for an unknown subcategory code."""
        try:
            return self._parent[sub_code]
        except KeyError:
            raise KeyError(f"unknown subcategory code {sub_code!r}") from None

    def iter_subcategories(self) -> Iterator[tuple[Category, Subcategory]]:
        """All (category, subcategory) pairs in catalogue order."""
        for cat in self.categories:
            for sub in cat.subcategories:
                yield cat, sub


def describe_location(data: object, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a path, naming the code of each list item on it."""
    parts: list[str] = []
    node: object = data
    for key in loc:
        if isinstance(key, int):
            item = node[key] if isinstance(node, list | tuple) and 0 <= key < len(node) else None
            code = item.get("code") if isinstance(item, Mapping) else None
            parts.append(f"[{key}]" + (f"(code {code!r})" if code is not None else ""))
            node = item
        else:
            parts.append(("." if parts else "") + key)
            node = node.get(key) if isinstance(node, Mapping) else None
    return "".join(parts) or "catalogue"


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    """Validate a decoded catalogue document; ValueError lists every problem with its path."""
    if not isinstance(data, Mapping):
        raise ValueError(f"catalogue must be a JSON object, not {type(data).__name__}")
    try:
        return Catalogue.model_validate(dict(data))
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"  {describe_location(data, tuple(err['loc']))}: {msg}")
        raise ValueError("invalid catalogue:\n" + "\n".join(lines)) from None


@cache
def _default_document() -> dict[str, Any]:
    """The packaged catalogue, with its items (条, `data/items.json`) under their
    subcategories."""
    package, name = _DEFAULT_RESOURCE
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    items = json.loads(
        resources.files(package).joinpath(_DEFAULT_ITEMS).read_text(encoding="utf-8")
    )["items"]
    by_sub: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        fields = {k: v for k, v in item.items() if k != "subcategory_code"}
        by_sub.setdefault(item["subcategory_code"], []).append(fields)
    for cat in document["categories"]:
        for sub in cat["subcategories"]:
            sub["items"] = by_sub.pop(sub["code"], [])
    if by_sub:
        raise ValueError(f"items of unknown subcategories: {sorted(by_sub)}")
    return document


@cache
def load_default_catalogue() -> Catalogue:
    """The catalogue packaged with gridgov, parsed once per process."""
    return parse_catalogue(_default_document())
