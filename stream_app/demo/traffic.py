"""When the demo day's requests arrive and from which client: arrival times and bursts.

Regular traffic follows a gentle daily cycle (a cosine peaking mid-afternoon): real
traffic is lower at night, but a curve much steeper than this one would trip the
``prediction_volume_drop`` alert every evening on the app's own metrics, and the demo
should page for the incidents it plants, not for the night. Over-limit clients each send
one burst: ``limit + extra`` requests spread evenly over half a rate-limit window, so the
first ``limit`` pass and exactly ``extra`` are throttled.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DAY_SECONDS",
    "PEAK_HOUR",
    "burst_offsets",
    "diurnal_weights",
    "regular_offsets",
]

DAY_SECONDS = 86_400
PEAK_HOUR = 15.0
_AMPLITUDE = 0.3  # peak/trough = 1.3/0.7; see the module docstring for why not more


def diurnal_weights(minutes: int) -> np.ndarray:
    """Relative request rate of each minute from the start of the day (sums to 1).

    Example:
        >>> w = diurnal_weights(1440)
        >>> round(float(w.max() / w.min()), 2), round(float(w.sum()), 6)
        (1.86, 1.0)
        >>> 14 <= int(np.argmax(w)) // 60 <= 15  # the afternoon peak
        True
    """
    if minutes < 1:
        raise ValueError(f"minutes must be >= 1, got {minutes}")
    hours = (np.arange(minutes) + 0.5) / 60.0
    rate = 1.0 + _AMPLITUDE * np.cos(2.0 * math.pi * (hours - PEAK_HOUR) / 24.0)
    return np.asarray(rate / rate.sum(), dtype=np.float64)


def regular_offsets(n: int, duration_seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` sorted arrival times in seconds from the start, in whole milliseconds.

    A minute is drawn by its diurnal weight, then a uniform moment inside it.

    Example:
        >>> t = regular_offsets(5, 3600.0, np.random.default_rng(0))
        >>> t.tolist() == sorted(t.tolist()), bool((t >= 0).all() and (t < 3600).all())
        (True, True)
    """
    if n < 0 or duration_seconds <= 0:
        raise ValueError(f"need n >= 0 and duration_seconds > 0, got {n}, {duration_seconds}")
    minutes = max(1, math.ceil(duration_seconds / 60.0))
    minute = rng.choice(minutes, size=n, p=diurnal_weights(minutes))
    seconds = minute * 60.0 + rng.random(n) * 60.0
    seconds = np.minimum(seconds, math.nextafter(duration_seconds, 0.0))
    return np.sort(np.floor(seconds * 1000.0) / 1000.0)


def burst_offsets(start_seconds: float, count: int, window_seconds: float) -> np.ndarray:
    """Arrival times of one burst: ``count`` requests evenly over half a window.

    Half a window keeps every request of the burst inside one window of the sliding-log
    limiter, whatever the rounding to milliseconds.

    Example:
        >>> burst_offsets(100.0, 4, 60.0).tolist()
        [100.0, 107.5, 115.0, 122.5]
    """
    if count < 1 or window_seconds <= 0:
        raise ValueError(f"need count >= 1 and window_seconds > 0, got {count}, {window_seconds}")
    step = window_seconds / 2.0 / count
    return np.asarray(
        np.floor((start_seconds + step * np.arange(count)) * 1000.0) / 1000.0, dtype=np.float64
    )
