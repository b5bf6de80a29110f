"""Traffic engineering's choice, on plain numbers: which links are hot, a path's peak utilisation with a pair's demand
on it, the least-loaded of the k shortest paths, whether a move is worth it. No Ryu, no Redis: controller/te.py
gathers the loads (measurements, forecasts, intents) and acts on these answers."""
import itertools
from typing import Iterable

MIN_GAIN = 0.05  # a move must lower the peak utilisation on the pair's path by 5 points
HOT_MOVE_GAIN = 0.15  # a move that leaves the pair on a path still over the threshold must gain 15 points

Link = tuple[int, int]


def links_of(path: list[int]) -> list[Link]:
    return list(zip(path, path[1:]))


def peak_utilisation(path: list[int], loads: dict[Link, float], caps: dict[Link, float], demand: float = 0.0,
                     current: list[int] = ()) -> float:
    """The highest utilisation along `path` once a pair's `demand` is on it (and off its `current` path, whose loads
    include it). Links without a capacity are not managed and do not count."""
    current_links = set(links_of(current))
    utils = [(loads.get(l, 0.0) - (demand if l in current_links else 0.0) + demand) / caps[l]
             for l in links_of(path) if l in caps]
    return max(utils, default=0.0)


def least_loaded_path(candidates: Iterable[list[int]], default: list[int], loads: dict[Link, float],
                      caps: dict[Link, float], demand: float, current: list[int], k: int) -> list[int]:
    """Among the first k candidates, the one with the lowest peak utilisation; `default` (the pair's current path, or
    the shortest for a new pair) unless another is better by MIN_GAIN: no flapping for a few points."""
    def peak(path):
        return peak_utilisation(path, loads, caps, demand, current)

    best = default
    for path in itertools.islice(candidates, k):
        if peak(path) < peak(best) - MIN_GAIN:
            best = path
    return best


def move_delta(old: list[int], new: list[int], bps: float) -> dict[Link, float]:
    """What moving a pair of `bps` from path `old` to `new` changes on each link (nothing on links both share)."""
    delta = dict.fromkeys(links_of(old), -bps)
    for l in links_of(new):
        delta[l] = delta.get(l, 0.0) + bps
    return delta


def hot_links(loads: dict[Link, float], caps: dict[Link, float], threshold: float) -> list[Link]:
    """Managed links over the threshold, hottest first."""
    return sorted((l for l in loads if l in caps and loads[l] / caps[l] > threshold),
                  key=lambda l: -loads[l] / caps[l])


def worth_moving(before: float, after: float, threshold: float) -> bool:
    """From one hot path to another for a few points is not worth it: measurement noise would flap it back."""
    return not (after > threshold and before - after < HOT_MOVE_GAIN)
