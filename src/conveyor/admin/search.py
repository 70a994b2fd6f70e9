"""Search every retained job of a state by id, name and data, a bounded slice at a time.

A search call reads at most ``SEARCH_BUDGET`` jobs (``SEARCH_CHUNK`` per round trip, so no single
Redis command runs long) and answers the matches it found with a cursor to go on from. The
cursor is a position by score in the state's sorted set, not an index, so jobs added at the
newest end while a search pages through the old ones do not shift it. A caller (the dashboard)
calls again with the cursor until it has enough matches or the cursor is null: the whole set is
searched in bounded steps, in time proportional to its size and memory of one chunk. The waiting
jobs in groups (flow control) come after the wait set, group after group: the cursor then says
which group, and where (see search.lua).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..errors import ConfigurationError
from ..job import JobState
from ..limits import MAX_PAGE_SIZE
from ..procedures import parse_state
from ..storage.commands import SearchCursor
from .listing import SORT_ORDERS, JobListing, ascii_lower, summarize_job

__all__ = ["SEARCH_BUDGET", "JobSearch", "SearchPage"]

#: Jobs one search call reads at most.
SEARCH_BUDGET = 10_000
#: Jobs one search.lua call reads (a slice that holds Redis for about a millisecond).
SEARCH_CHUNK = 200


@dataclasses.dataclass(slots=True)
class SearchPage:
    jobs: list[dict[str, Any]]
    #: Jobs read by this call.
    scanned: int
    #: Jobs in the state when the call began (the scale of the whole search).
    total: int
    #: Where the next call starts; None when the end of the set was reached.
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _cursor(text: str | None, newest: bool) -> SearchCursor:
    """``"<score>:<skip>"``, or past the wait set (flow control)
    ``"<score>:<skip>:<group's count>:<group's skip>:<group>"``, as ``cursor_text`` wrote it."""
    if not text:
        return SearchCursor("+inf" if newest else "-inf", 0)
    parts = text.split(":", 4)
    try:
        if len(parts) not in (2, 5) or math.isnan(float(parts[0])):
            raise ValueError
        numbers = [int(part) for part in parts[1:4]]
        if min(numbers) < 0 or (len(parts) == 5 and not parts[4]):
            raise ValueError
    except ValueError:
        raise ConfigurationError(f"cursor {text[:40]!r} is not one this search gave out") from None
    if len(parts) == 2:
        return SearchCursor(parts[0], numbers[0])
    return SearchCursor(parts[0], numbers[0], parts[4], numbers[1], numbers[2])


def cursor_text(cursor: SearchCursor) -> str:
    head = f"{cursor.score}:{cursor.skip}"
    if not cursor.group:
        return head
    return f"{head}:{cursor.group_count}:{cursor.group_skip}:{cursor.group}"


class JobSearch(JobListing):
    """Cursor search over the jobs of one queue."""

    async def search_jobs(
        self,
        name: str,
        state: JobState | str,
        *,
        job_name: str | None = None,
        text: str | None = None,
        cursor: str | None = None,
        size: int = 20,
        sort: str = "newest",
    ) -> SearchPage:
        """Up to ``size`` jobs in ``state`` whose name is ``job_name`` (when given) and whose
        id, name or data contains ``text`` (case-insensitively), from ``cursor`` on."""
        queue = await self.require(name)
        job_state = parse_state(state)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"size must be between 1 and {MAX_PAGE_SIZE}")
        if sort not in SORT_ORDERS:
            raise ConfigurationError("sort must be 'newest' or 'oldest'")
        newest = sort == "newest"
        position = _cursor(cursor, newest)
        commands = queue.commands
        total = await self.redis.run(commands.state_count(job_state))
        needle = ascii_lower(text) if text else ""
        found: list[str] = []
        scanned = 0
        end = False
        while scanned < SEARCH_BUDGET and len(found) < size and not end:
            want = min(SEARCH_CHUNK, SEARCH_BUDGET - scanned)
            part = await self.redis.run(
                commands.search(
                    job_state, position, want, newest, job_name or "", needle, size - len(found)
                )
            )
            scanned += part.read
            found += part.ids
            position = part.cursor
            end = part.end
        jobs = await self.redis.run(commands.get_jobs(found, None)) if found else []
        next_cursor = None if end else cursor_text(position)
        return SearchPage([summarize_job(j) for j in jobs], scanned, total, next_cursor)
