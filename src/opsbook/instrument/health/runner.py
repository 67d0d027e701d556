"""Runs health checks concurrently, each under a timeout, with a short result cache.

A flood of probes (a load balancer, three monitoring systems and a curious human) costs one
evaluation per check per TTL: concurrent requests share the evaluation in flight, later ones
read the cached result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opsbook.instrument.health.checks import HealthCheck
from opsbook.instrument.health.model import ComponentResult, Observation, utc_now

DEFAULT_CHECK_TIMEOUT = 2.0
DEFAULT_CACHE_TTL = 1.0

logger = logging.getLogger("opsbook.health")


@dataclass
class _Slot:
    result: ComponentResult | None = None
    expires: float = 0.0
    task: asyncio.Task[ComponentResult] | None = None
    loop: asyncio.AbstractEventLoop | None = None


class HealthRunner:
    def __init__(
        self,
        checks: Sequence[HealthCheck],
        *,
        timeout: float = DEFAULT_CHECK_TIMEOUT,
        cache_ttl: float = DEFAULT_CACHE_TTL,
    ) -> None:
        names = [c.name for c in checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"health check names must be unique; {', '.join(duplicates)} used more than once "
                "(pass name= to tell them apart)"
            )
        if timeout <= 0 or cache_ttl < 0:
            raise ValueError("health timeout must be positive and cache_ttl not negative")
        self.checks = {c.name: c for c in checks}
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self._slots = {c.name: _Slot() for c in checks}

    async def run(self, names: Iterable[str] | None = None) -> list[ComponentResult]:
        selected = self.checks.values() if names is None else [self.checks[n] for n in names]
        return list(await asyncio.gather(*(self._result(check) for check in selected)))

    async def _result(self, check: HealthCheck) -> ComponentResult:
        slot = self._slots[check.name]
        cached = slot.result
        if cached is not None and time.monotonic() < slot.expires:
            return cached
        loop = asyncio.get_running_loop()
        if slot.task is None or slot.loop is not loop:
            slot.task = loop.create_task(self._evaluate(check, slot))
            slot.loop = loop
        # Shielded: a client that disconnects must not cancel the evaluation others wait on.
        return await asyncio.shield(slot.task)

    async def _evaluate(self, check: HealthCheck, slot: _Slot) -> ComponentResult:
        timeout = check.timeout or self.timeout
        observed_at = utc_now()
        observations: tuple[Observation, ...]
        try:
            outcome = await asyncio.wait_for(check.observe(), timeout)
            observations = tuple(outcome) if isinstance(outcome, list) else (outcome,)
            if not observations:
                raise ValueError("the check returned no observation")
        except TimeoutError:
            observations = (
                Observation(check.measurement, "fail", output=f"timed out after {timeout:g} s"),
            )
            logger.warning("health check %s timed out after %g s", check.name, timeout)
        except Exception as exc:
            # The public document names the exception type only: messages can carry hosts,
            # user names or SQL. The full message goes to the service's own log.
            observations = (
                Observation(
                    check.measurement, "fail", output=f"{type(exc).__name__} (details in the log)"
                ),
            )
            logger.warning("health check %s failed: %s: %s", check.name, type(exc).__name__, exc)
        result = ComponentResult(
            component=check.name,
            component_type=check.component_type,
            critical=check.critical,
            observations=observations,
            time=observed_at,
        )
        slot.result = result
        slot.expires = time.monotonic() + self.cache_ttl
        slot.task = None
        return result
