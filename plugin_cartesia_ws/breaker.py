"""Pure: when the socket pool may connect, and when a new request must fail fast.

Two scopes, two owners:

- **Within one request** (a ``stream()`` or a ``synthesize()``, across LiveKit's retry
  attempts) LiveKit's retry loop is the policy: ``APIConnectOptions`` says how many
  attempts, how long each may take and how long to wait between them. Once a request is
  admitted, every attempt really connects, so the request sees exactly the errors (type
  and count) LiveKit's contract promises, whatever the breaker does meanwhile.
- **Across requests** the breaker stops reconnect storms: after ``breaker_threshold``
  consecutive failed connection attempts (by any request, or a background connect) it
  opens, and for ``breaker_cooldown_s`` a *new* request fails at once with a
  non-retryable error (so LiveKit does not retry it and a ``FallbackAdapter`` switches
  away immediately). The first request after the pause is admitted and tries; a failure
  re-opens the breaker. Any sign of health closes it: a handshake that succeeds (the
  failure count stays, so a socket that dies at once re-opens it), audio, a completed
  context (these forget the failures); and so do new settings (``reset``).

Background connects (prewarm, reconnect after an idle close) have no request to answer
to; they wait out a jittered exponential backoff instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReconnectPolicy:
    base_delay_s: float = 0.2  # background connects: first backoff, doubling ...
    max_delay_s: float = 10.0  # ... up to this
    jitter: float = 0.5  # a delay is scaled by a random factor in [1 - jitter, 1]
    quick_failure_s: float = 2.0  # a socket closing this soon, with nothing done, failed
    breaker_threshold: int = 3  # consecutive failures that open the breaker
    breaker_cooldown_s: float = 15.0  # new requests fail fast this long
    idle_refreshes: int = 3  # background refreshes of a socket no turn has used since

    def delay(self, failures: int, rng: random.Random) -> float:
        """Pause after ``failures`` consecutive failures (the cooldown once the breaker opens)."""
        if failures >= self.breaker_threshold:
            return self.breaker_cooldown_s
        raw = min(self.max_delay_s, self.base_delay_s * 2 ** max(failures - 1, 0))
        return raw * (1.0 - self.jitter * rng.random())


@dataclass
class Ticket:
    """One LiveKit request across its retry attempts: admitted once, then never refused."""

    admitted: bool = False


@dataclass
class Breaker:
    policy: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0  # consecutive
    retry_at: float = 0.0  # monotonic time: background connects wait until then
    last_error: str | None = None

    def is_open(self, now: float) -> bool:
        return self.failures >= self.policy.breaker_threshold and now < self.retry_at

    def admit(self, ticket: Ticket, now: float) -> str | None:
        """None: the request may connect (now and on every retry). Else why it may not."""
        if ticket.admitted:
            return None
        if self.is_open(now):
            cause = f" (last error: {self.last_error})" if self.last_error else ""
            return (
                f"Cartesia is unavailable after {self.failures} failed attempts; "
                f"next attempt in {self.retry_at - now:.1f}s{cause}"
            )
        ticket.admitted = True
        return None

    def may_connect_in_background(self, now: float) -> bool:
        return now >= self.retry_at

    def failed(self, error: str, now: float) -> float:
        """A connection attempt failed (or a socket died at once). Returns the pause."""
        self.failures += 1
        self.last_error = error
        pause = self.policy.delay(self.failures, self.rng)
        self.retry_at = now + pause
        return pause

    def handshake_ok(self) -> None:
        """A socket opened: new requests may try again (the count stays until audio)."""
        self.retry_at = 0.0

    def succeeded(self) -> None:
        """Audio came, or a context completed: the server works. Also new settings."""
        self.failures = 0
        self.retry_at = 0.0
        self.last_error = None
