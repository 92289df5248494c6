"""Fixed-window counters for abuse limits (per client address, per email domain).

Kept in memory: a limit protects this process's work, costs no database write
on the signing path, and is forgotten on restart (an acceptable reset for
hourly windows).
"""

from __future__ import annotations

MAX_KEYS = 200_000  # distinct keys counted in one window at most
FLOODED = 2**31  # the count a key gets when a flood left no room to count it


class RateLimiter:
    def __init__(self, window: int = 3600) -> None:
        self.window = window
        self._start = 0
        self._counts: dict[str, int] = {}

    def hit(self, key: str, now: int) -> int:
        """Count one event for ``key`` in the window holding ``now``; return the count."""
        start = now - now % self.window
        if start != self._start:
            self._start = start
            self._counts = {}
        elif len(self._counts) >= MAX_KEYS and key not in self._counts:
            # A flood of distinct keys (many addresses of one network, say): keep memory
            # bounded without forgetting the counts that matter. Keys seen once go first;
            # if that frees nothing, a new key is over every limit until the window ends.
            self._counts = {k: c for k, c in self._counts.items() if c > 1}
            if len(self._counts) >= MAX_KEYS:
                return FLOODED
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count

    def retry_after(self, now: int) -> int:
        return self.window - now % self.window
