"""Authentication backends of the console."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class ThrottledLoginBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for logins that come with a request (the login forms).

    A call without one (a management command, a script, the test client's login()) has no
    client address to throttle by; django-axes would raise on it instead of letting the next
    backend decide.
    """

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
