"""The REST API under /api/v1. Importing the modules registers their endpoints on `api`."""

from contactcenter.server.endpoint import Api

api = Api("/api/v1")

from contactcenter.server.api import (  # noqa: E402, F401  (registration side effects)
    accounts,
    attachments,
    auth,
    canned,
    complaints,
    contacts,
    customers,
    directory,
    events,
    followups,
    notes,
    queues,
    stats,
    supervisor,
    tiers,
    users,
)
