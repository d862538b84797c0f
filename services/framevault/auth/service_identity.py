"""A service's own identity on the channel it opens to the other service.

The token is the service's short-lived service token
(``credentials.ServiceTokenMinter``), sent with every call on the channel by
the channel's interceptors (``framevault.api.transport.token_interceptors``),
so no call site passes it and none can pass an end caller's token instead: a
call's own ``authorization`` is replaced (docs/SECURITY.md,
"Service-to-service identity").
"""

from __future__ import annotations

from collections.abc import Callable

from framevault.auth.credentials import ServiceTokenMinter
from framevault.common.config import Settings


def service_token(settings: Settings, service: str, audience_service: str) -> Callable[[], str]:
    """The token source of ``service``'s calls to ``audience_service``: its current service token, minted
    again before it expires. Asked on the event loop of the channel, as each call starts."""
    return ServiceTokenMinter(settings, service, audience_service).token
