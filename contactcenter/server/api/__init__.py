"""The REST API under /api/v1. Importing the modules registers their endpoints on `api`."""

from contactcenter.server.endpoint import Api

api = Api("/api/v1")

from contactcenter.server.api import (  # noqa: E402, F401  (registration side effects)
    accounts,
    auth,
    complaints,
    contacts,
    customers,
    events,
    notes,
    queues,
    stats,
    supervisor,
    tiers,
    users,
)
