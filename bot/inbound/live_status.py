"""Meta's live video statuses → what PlusOne does with the broadcast. Pure: one table, used everywhere.

A live video's status is spelled in capitals by the Graph API (`GET /{live-video-id}?fields=status`:
`LiveVideo.BroadcastStatus`, and `LIVE_NOW` from the statuses a video is created or updated with) and in
lower case by the `live_videos` webhook (`{"id": ..., "status": "live"}`, `tests/data/meta/`). Every
status Meta documents falls in one phase (docs/meta-platform.md, "Live video ids and statuses"):

- scheduled: not broadcasting yet; a later `live` starts it (never recorded as ended);
- live: broadcasting now; its comments are read;
- ended: over for good (stopped, processing into a video, a video, or a schedule cancelled or expired);
- unknown: a word Meta has not documented: logged and ignored, so it never ends a broadcast.
"""

from __future__ import annotations

from enum import StrEnum


class LivePhase(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    UNKNOWN = "unknown"


# Meta's statuses (lower case, as the webhook sends them and as PlusOne stores them) and their phase.
META_LIVE_STATUSES: dict[str, LivePhase] = {
    "unpublished": LivePhase.SCHEDULED,  # created (the preview before going live), not public yet
    "scheduled_unpublished": LivePhase.SCHEDULED,
    "scheduled_live": LivePhase.SCHEDULED,
    "live_now": LivePhase.LIVE,  # the word a video is created or updated with to go live
    "live": LivePhase.LIVE,
    "live_stopped": LivePhase.ENDED,
    "processing": LivePhase.ENDED,  # the broadcast is over and becoming a video
    "vod": LivePhase.ENDED,
    "scheduled_canceled": LivePhase.ENDED,
    "scheduled_expired": LivePhase.ENDED,
}

LIVE_NOW_STATUSES = frozenset(s for s, phase in META_LIVE_STATUSES.items() if phase is LivePhase.LIVE)


def normalise_status(status: str) -> str:
    """Meta's word as PlusOne stores it: lower case, without surrounding blanks."""
    return status.strip().lower()


def live_phase(status: str) -> LivePhase:
    """The phase of a status in either of Meta's spellings (`LIVE_NOW`, `live_now`); UNKNOWN otherwise."""
    return META_LIVE_STATUSES.get(normalise_status(status), LivePhase.UNKNOWN)
