"""Facts of seed.sql the notebook's tests rely on; the fixtures (querywarden, querywarden_db, ...)
come from the querywarden plugin."""

from __future__ import annotations

BIG_TENANT = 1  # half of all notes: 12,000 at scale 1, 9,600 of them live
TYPICAL_TENANT = 7  # ~24 notes, like most tenants
BIG_TENANTS_NOTE = 4242  # even note ids belong to tenant 1
