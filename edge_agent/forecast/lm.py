"""`edge_lm`: the edge LM with its `forecast` LoRA adapter (LLMTime style) as one more forecasting method.

The task: a prompt `series: 4 5 2 , 4 8 0 , ... ->` with the last HISTORY = 16 values, each an integer 0..999 written
as three space-separated digits, steps joined by ' , ', and the target the next HORIZON = 4 values in the same form.
The adapter is trained either on models/tasks.py's generated series of that task (`netgpt models train --task
forecast`: `base + amp * sin(...)`, base 200..600, amp 50..300) or, the shipped one (models/adapters/forecast), on
windows of real traces scaled exactly as step 1 below scales the input (`netgpt forecast train-lm`, `training_sets`:
the windows of the first 75% of the bench's two traces, the part the bench fits every method on). This method:

1. takes the last 16 values of the history and scales them affinely into the task's digit range: the window's
   midpoint (min+max)/2 goes to 400 and its range (max-min) to 350 units, so the window fills 225..575 and a
   continuation can leave it by more than one window range either way before the 0..999 clip. A flat window uses 10%
   of its level (at least 1) as its range.
   Values are rounded and clipped to 0..999 and serialised with `netgpt.models.tasks.serialise` (the exact task encoding);
2. asks the edge LM with the `forecast` adapter for the continuation, greedily (temperature 0), `max_tokens` enough for
   4 values;
3. parses the digits back with `netgpt.models.tasks.parse_series` and undoes the scaling;
4. for steps beyond 4 it rolls: the 4 values it just got join the window and it asks again, up to `max_lm_steps` (12,
   i.e. 3 calls); steps beyond that are seasonal naive (one period earlier, over history + forecast).

Fallback, never NaN: any step the LM did not produce (fewer than 4 values parsed, no digits at all, a generation error)
takes the seasonal naive value for that step (the value one period earlier over history + forecast so far), and that
value also stands in the window for the next round.

Availability: the method loads lazily, once per cache folder (`ServerCache`; the process's one is `SERVERS`), from
`Settings.cache_dir` unless it is given another folder: the edge LM itself, Settings.edge_base (SmolLM2-135M-Instruct,
"cloud-default", by default; only if already built, never built or trained here) on Settings.serving_backend
(llama.cpp by default), plus <cache>/adapters/forecast, checked against the base's fingerprint when it is loaded. The
adapter is shipped in models/adapters/forecast (trained on the SmolLM2 base with the command its README names) and
`make models` installs it (`netgpt models install --task forecast`). `unavailable()` returns why it cannot load
(base not built, no adapter, an adapter made for another base, an edge base that is a task student) or None;
fit_forecaster then leaves it out and logs the reason. Until 2026-12-08 the method ran on the 14 M GPT-2
"edge-default" whatever the edge base was, so on every machine where only the default edge LM was built it was
skipped. Importing this module loads nothing and registers nothing:
netgpt.edge_agent.forecast.backtesting.METHODS lists the class.

It is opt-in: fit_forecaster only considers it when asked (`methods=(..., "edge_lm")`, or Settings.forecast_lm,
NETGPT_FORECAST_LM=1, which adds it to the default methods), because each forecast is 1-3 generations. Its
`max_backtest_origins` = 40 makes fit_forecaster backtest every candidate on at most 40 evenly spaced origins of the
validation tail when it is a candidate (the same origins for all, so the comparison is fair; the intervals then rest on
those 40 origins only).

Measured on the real traces, SmolLM2 on llama.cpp with the shipped adapter (2026-12-08, `bench/forecast.py --traces uk
wc98 --rows forecaster edge_lm`, bench/out/forecast_edge_lm_2026-12-08.txt, held-out part, 40 origins per trace): MAE at
5 min / 1 h, UK 66.7 / 333.7 against 63.0 / 372.2 for the no-LM ablation (the last value through the same scaling) and
53.6 / 113.1 for the default forecaster on those origins; WC98 5,513.8 / 41,129.9 against 3,327.1 / 38,001.8 and
3,239.4 / 29,532.7. The LM beats the ablation only on UK at 1 h (0.90 [0.81, 0.97]) and the forecaster nowhere. Every
step was parsed from its answers; 94-104 s for 40 origins, about 0.8 s a call. So when the backtest chooses it, the
first predict after a fit asks the LM about 1,800 times (three calls for each of the ~610 origins it forecasts from:
over 20 minutes here) and the later ones 3 times each (the answers kept).

Measured on the earlier base, the 14 M GPT-2 "edge-default", with `python bench/forecast.py --lm --seeds 0 1`
(2-core shared CPU, 1 torch thread; the adapter cached on 26 Nov 2026, 600 steps, card: task MAE 159.7 vs 117.5 for
repeating the last value). Generated trace, period 48, 21 days, last 2 days as test, 29 evenly spaced origins per
seed; MAE in Mbit/s at steps 1 / 6 / 12:

    seed 0   seasonal_naive 101.4 / 106.4 /  93.7   ridge_lags 22.7 / 44.2 / 48.3   edge_lm 78.4 / 89.9 / 103.7
    seed 1   seasonal_naive  53.9 /  57.9 /  61.1   ridge_lags 26.0 / 50.7 / 55.1   edge_lm 74.1 / 82.8 / 101.8

So this adapter is well behind ridge_lags at every step, and behind seasonal naive except at short steps of seed 0;
the backtest decides whether it earns a weight. predict latency (median of 5): 125 ms at h=1 (one call), 244 ms at
h=6, 365 ms at h=12 (three calls); no step needed the fallback in those runs. fit_forecaster with edge_lm on 14 days at
period 48, max_horizon 12: 19 s (40 origins).
"""
from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import numpy as np

from netgpt.core.settings import get_settings
from netgpt.edge_agent.forecast.methods import Method
from netgpt.models import student, tasks
from netgpt.models.backends import open_server
from netgpt.models.base import BaseSpec, ModelError, resolve
from netgpt.models.serving import TextServer

log = logging.getLogger(__name__)

ADAPTER = "forecast"
CENTRE, HALF_SPAN = 400.0, 175.0  # the window [min, max] maps to [CENTRE - HALF_SPAN, CENTRE + HALF_SPAN]


# --- serialisation (the task's encoding) --------------------------------------------------------------------------------


def scale_window(window: np.ndarray) -> tuple[list[int], float, float]:
    """(integers 0..999 for the prompt, midpoint, units per value) for a window of real values."""
    window = np.asarray(window, dtype=float)
    lo, hi = float(window.min()), float(window.max())
    mid = (lo + hi) / 2
    span = hi - lo
    if span <= 0:
        span = max(abs(mid) * 0.1, 1.0)
    unit = span / (2 * HALF_SPAN)  # real value per digit unit
    return to_units(window, mid, unit), mid, unit


def to_units(values: np.ndarray, mid: float, unit: float) -> list[int]:
    """Real values as the task's integers: around `mid`, `unit` per integer, rounded and clipped to 0..999."""
    return np.clip(np.rint(CENTRE + (np.asarray(values, dtype=float) - mid) / unit), 0, 999).astype(int).tolist()


def unscale(values: list[int], mid: float, unit: float) -> np.ndarray:
    return mid + (np.asarray(values, dtype=float) - CENTRE) * unit


def make_prompt(ints: list[int]) -> str:
    """Exactly the task's prompt: forecast_examples writes f"series: {serialise(history)} ->"."""
    return f"series: {tasks.serialise(ints)} ->"


def parse_completion(text: str, n: int = tasks.HORIZON) -> list[int]:
    """The first line's values (as tasks.score reads an answer), at most n."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return tasks.parse_series(first)[:n]


# --- training data (netgpt forecast train-lm) ---------------------------------------------------------------------------


def series_examples(series: list[np.ndarray], n: int, seed: int) -> list[tasks.Example]:
    """`n` examples of the forecast task cut from real series, as predict sees them: a run of HISTORY + HORIZON
    consecutive finite values at a random place (seeded, no place twice), scaled by its first HISTORY values
    (scale_window), and the next HORIZON values in the same units, rounded and clipped to 0..999, as the target."""
    width = tasks.HISTORY + tasks.HORIZON
    places = [(i, s) for i, y in enumerate(series) if len(y) >= width
              for s in np.flatnonzero(np.lib.stride_tricks.sliding_window_view(np.isfinite(y), width).all(1))]
    if len(places) < n:
        raise ValueError(f"the series hold {len(places)} windows of {width} finite values; {n} were asked for")
    out = []
    for k in np.random.default_rng(seed).choice(len(places), size=n, replace=False):
        i, s = places[k]
        window = np.asarray(series[i][s:s + width], dtype=float)
        ints, mid, unit = scale_window(window[:tasks.HISTORY])
        out.append(tasks.Example(make_prompt(ints), " " + tasks.serialise(to_units(window[tasks.HISTORY:], mid, unit))))
    return out


def training_sets(series: list[np.ndarray], fit_fraction: float, n_train: int, n_eval: int, seed: int = 0,
                  eval_fraction: float = 0.1) -> tuple[list[tasks.Example], list[tasks.Example]]:
    """(train, eval) from the fitted part of each series, its first `fit_fraction` (what bench/forecast.py fits on):
    training windows from the first 1 - eval_fraction of that part, eval windows from the rest of it, so no window
    of one lies in the other and nothing after the fitted part is read."""
    if not 0 < fit_fraction <= 1 or not 0 < eval_fraction < 1:
        raise ValueError(f"fit_fraction must be in (0, 1] and eval_fraction in (0, 1), got {fit_fraction}, "
                         f"{eval_fraction}")
    fitted = [np.asarray(y, dtype=float)[:int(len(y) * fit_fraction)] for y in series]
    cuts = [int(len(y) * (1 - eval_fraction)) for y in fitted]
    return (series_examples([y[:c] for y, c in zip(fitted, cuts)], n_train, seed),
            series_examples([y[c:] for y, c in zip(fitted, cuts)], n_eval, seed + 1))


# --- loading ------------------------------------------------------------------------------------------------------------


class ServerCache:
    """Servers of the edge LM with the `forecast` adapter loaded, one per cache folder (loading takes seconds, so once
    per process), and why a folder could not be loaded (not retried)."""

    def __init__(self) -> None:
        self._servers: dict[Path, object] = {}
        self._failures: dict[Path, str] = {}
        self._lock = threading.Lock()

    def get(self, root: Path):
        """The server for this cache folder (loaded the first time), or raises RuntimeError saying why it cannot be."""
        root = Path(root)
        with self._lock:
            if root in self._servers:
                return self._servers[root]
            if root in self._failures:
                raise RuntimeError(self._failures[root])
            try:
                self._servers[root] = _load(root)
            except RuntimeError as exc:
                self._failures[root] = str(exc)
                raise
            return self._servers[root]

    def put(self, root: Path, server) -> None:
        """Use `server` (anything with TextServer.complete) for this folder instead of loading one."""
        with self._lock:
            self._servers[Path(root)] = server
            self._failures.pop(Path(root), None)

    def clear(self) -> None:
        with self._lock:
            self._servers.clear()
            self._failures.clear()


SERVERS = ServerCache()  # the process's servers: EdgeLMForecast's default


def _load(root: Path) -> TextServer:
    """The edge LM (Settings.edge_base, built in the cache folder `root`) with the `forecast` adapter of `root`."""
    settings = get_settings()
    base = settings.edge_base
    adapter = root / "adapters" / ADAPTER
    if student.card_of(Path(base)):
        raise RuntimeError(f"the edge base {base} is a task student: it takes no `{ADAPTER}` adapter")
    try:
        resolve(BaseSpec(base, root), build=False)  # "not built yet" before anything is loaded
        if not (adapter / "adapter_config.json").is_file():
            raise ModelError(f"no `{ADAPTER}` LoRA adapter at {adapter} (run `netgpt models install --task {ADAPTER}`)")
        return open_server(base, root, settings.serving_backend, build=False, adapters={ADAPTER: adapter},
                           log=lambda m: None)
    except (ModelError, OSError, ValueError) as exc:
        raise RuntimeError(f"cannot load the edge LM ({base}) with its `{ADAPTER}` adapter: {exc}") from exc


# --- the method ---------------------------------------------------------------------------------------------------------


class EdgeLMForecast(Method):
    name = "edge_lm"
    max_backtest_origins = 40  # fit_forecaster backtests on at most this many origins when edge_lm is a candidate
    max_lm_steps = 12  # steps asked of the LM (3 calls of 4); later steps are seasonal naive
    max_tokens = 40  # room for 4 values of 3 digits with separators (and the end token)
    # Answers kept per fitted method, by prompt (greedy decoding: the same prompt, the same answer). The forecaster
    # forecasts from every origin of its two-day calibration window at each predict when edge_lm is among the methods
    # it combines (~610 origins, 3 LM calls each at 5 min); consecutive forecasts share all but the newest origin's.
    memo_size = 4096

    def __init__(self, cache_dir: Path | None = None, servers: ServerCache = SERVERS):
        self.cache_dir = cache_dir  # None: Settings.cache_dir
        self.servers = servers

    @classmethod
    def unavailable(cls, cache_dir: Path | None = None, servers: ServerCache = SERVERS) -> str | None:
        """None if the LM loads, else the reason (fit_forecaster logs it and leaves the method out)."""
        try:
            servers.get(cache_dir or get_settings().cache_dir)
        except RuntimeError as exc:
            return str(exc)
        return None

    def fit(self, y, period, max_horizon, plan_length=None):
        self.period = period
        self.min_history = max(period, tasks.HISTORY)
        # nothing is fitted: the adapter was trained on the generated task
        self.server = self.servers.get(self.cache_dir or get_settings().cache_dir)
        self.unparsed = 0  # steps filled by the seasonal naive fallback (for diagnostics)
        self._answer = functools.lru_cache(maxsize=self.memo_size)(self._generate)  # an error is not kept: retried
        return self

    def _generate(self, ints: tuple[int, ...]) -> tuple[int, ...]:
        text = self.server.complete(make_prompt(list(ints)), adapter=ADAPTER, max_tokens=self.max_tokens).text
        return tuple(parse_completion(text))

    def _ask(self, window: np.ndarray) -> list[float]:
        ints, mid, unit = scale_window(window)
        try:
            values = self._answer(tuple(ints))
        except Exception as exc:  # noqa: BLE001  a generation error must not break a forecast: the fallback covers it
            log.warning("edge_lm: generation failed (%s); seasonal naive for these steps", exc)
            return []
        return unscale(list(values), mid, unit).tolist() if values else []

    def predict(self, history, horizon):
        y = np.asarray(history, dtype=float)
        out = list(y)
        n = len(y)
        while len(out) - n < horizon:
            got = self._ask(np.asarray(out[-tasks.HISTORY:])) if len(out) - n < self.max_lm_steps else []
            for k in range(tasks.HORIZON):
                if len(out) - n >= horizon:
                    break
                if k < len(got) and np.isfinite(got[k]) and len(out) - n < self.max_lm_steps:
                    out.append(got[k])
                else:
                    if len(out) - n < self.max_lm_steps:
                        self.unparsed += 1
                    out.append(out[-self.period])  # seasonal naive over history + forecast
        return np.asarray(out[n:n + horizon])

    def predict_many(self, y, origins, horizon):
        return np.stack([self.predict(y[: o + 1], horizon) for o in origins])
