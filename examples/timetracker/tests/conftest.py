"""Facts of the seed the time-tracker's tests rely on; the fixtures (querywarden, querywarden_db,
querywarden_session for the ORM, ...) come from the plugin."""

from __future__ import annotations

HEAVY_USER = 1187  # the heaviest user of the seed, with a running timer at any scale >= 0.06
IDLE_USER = 1  # owner of workspace 1, no running timer
BIG_WORKSPACE = 1
SECOND_WORKSPACE = 2

