"""What every channel's sender returns or raises: the send path turns these into delivery state."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SendResult:
    external_id: str  # the platform's id of the message it accepted
    # The recipient's id as the platform reports it (a private reply to a comment answers with the PSID).
    recipient_id: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    name: str | None
    picture_url: str | None = None


class SendError(Exception):
    """The platform refused or could not take a message.

    `reason` is written for the agent (shown on the message); `retryable` says whether the outbox should try
    again later; `retry_after` (seconds) is the platform's own hint when it gave one.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after
