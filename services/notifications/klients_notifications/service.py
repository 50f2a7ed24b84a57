"""The notifications nameko service: for now it joins the bus and answers readiness probes.

Event consumers, templates and SMTP delivery are the notifications issue's work.
"""

from __future__ import annotations

from nameko.rpc import rpc


class NotificationsService:
    """Turns events into e-mails and SMS."""

    name = "notifications"

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"
