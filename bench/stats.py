"""Bootstrap intervals shared by the benches: resample the units (prompts, forecast origins) with replacement."""
from __future__ import annotations

import numpy as np

BOOT = 2000


def boot_ci(values, stat=np.mean, n: int = BOOT, seed: int = 0) -> tuple[float, float, float]:
    """(point, low, high): `stat` of `values` and its 95% percentile interval over `n` resamples of values' rows (one
    row per unit: a 2-D array keeps a unit's columns together, so a statistic of several columns stays paired)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    boots = np.array([stat(values[i]) for i in idx])
    return float(stat(values)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def mean_ratio_ci(pairs, n: int = BOOT, seed: int = 0) -> tuple[float, float, float]:
    """(ratio, low, high): mean of column 0 over mean of column 1 of `pairs` (units, 2), e.g. two rows' absolute
    errors per forecast origin, with both columns of a unit resampled together."""
    return boot_ci(pairs, lambda e: e[:, 0].mean() / e[:, 1].mean(), n, seed)
