"""Hyperliquid's info endpoint: request weights, discovery, vault-state polling (venues.md §1.5, §1.6).

* Weights (venues.md §1.1, per IP, 1200/min): ``l2Book``, ``allMids``,
  ``clearinghouseState``, ``orderStatus``, ``spotClearinghouseState``,
  ``exchangeStatus`` cost 2; ``userRole`` 60; every other info request 20;
  the fill-history requests add 1 per 20 items returned.
* Discovery: the liquidator vaults are the children of the HLP vault
  (``vaultDetails(HLP).relationship.data.childAddresses``) whose own
  ``vaultDetails`` name contains "Liquidator"; on any failure the known
  addresses in ``config.HLP_LIQUIDATORS`` are used. Coins: the perps of
  ``metaAndAssetCtxs`` (delisted ones skipped).
* :class:`VaultStatePoller` polls ``clearinghouseState`` of each vault: the
  first answer per vault is published as the ledger's bootstrap
  ``AccountSnapshot`` (its ``time`` becomes the vault's fill watermark, see
  ``ws.py``); every answer updates the vault's balance and shortfall
  ``(−accountValue)+`` (exported as the backstop "insurance fund" balance and
  the venue's open deficit).
* :func:`poll_winners` reads ``clearinghouseState`` of ADL'd winners after a
  wave (bounded count and time) for the capacities the ledger lacks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from adlmon.config import HLP_LIQUIDATORS
from adlmon.errorlog import ErrorLog
from adlmon.events import AccountSnapshot, Event, ParseError
from adlmon.net.backoff import RepeatedFailure
from adlmon.net.rest import RestClient, RestError
from adlmon.venues.hyperliquid.parse import (
    VENUE, parse_clearinghouse_state, parse_meta_and_asset_ctxs, perp_coins, unrealized_pnl,
    vault_children, vault_name,
)

log = logging.getLogger(__name__)

LIGHT = frozenset({"l2Book", "allMids", "clearinghouseState", "orderStatus",
                   "spotClearinghouseState", "exchangeStatus"})
PER_ITEM = frozenset({"userFills", "userFillsByTime", "historicalOrders", "userTwapSliceFills",
                      "recentTrades"})


def request_weight(body: dict) -> int:
    """The weight of one info request before its per-item part (venues.md §1.1)."""
    kind = body.get("type")
    if kind in LIGHT:
        return 2
    if kind == "userRole":
        return 60
    return 20


def item_weight(body: dict, response: Any) -> int:
    """The per-item part, known once the response is in: 1 per 20 items."""
    if body.get("type") in PER_ITEM and isinstance(response, list):
        return len(response) // 20
    return 0


class InfoClient:
    """Typed info requests over a rate-limited RestClient."""

    def __init__(self, rest: RestClient):
        self.rest = rest

    async def post(self, body: dict) -> Any:
        obj = await self.rest.post(body, request_weight(body))
        extra = item_weight(body, obj)
        if extra:
            self.rest.limiter.charge(extra)
        return obj

    async def meta_and_asset_ctxs(self) -> Any:
        return await self.post({"type": "metaAndAssetCtxs"})

    async def vault_details(self, vault: str) -> Any:
        return await self.post({"type": "vaultDetails", "vaultAddress": vault})

    async def clearinghouse_state(self, user: str) -> Any:
        return await self.post({"type": "clearinghouseState", "user": user})

    async def close(self) -> None:
        await self.rest.close()


@dataclass(frozen=True)
class Vault:
    address: str
    name: str


def slug(name: str) -> str:
    """A label-safe pool name: "HLP Liquidator 2" -> "hlp_liquidator_2"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40] or "vault"


def known_liquidators(addresses: Iterable[str] = HLP_LIQUIDATORS) -> list[Vault]:
    """The liquidator vaults known in advance (venues.md §1.6), with their names."""
    return [Vault(a.lower(), "HLP Liquidator" + ("" if i == 0 else f" {i + 1}"))
            for i, a in enumerate(addresses)]


async def discover_liquidators(info: InfoClient, hlp_vault: str,
                               fallback: Iterable[str] = HLP_LIQUIDATORS,
                               max_users: int = 10) -> tuple[list[Vault], str]:
    """The liquidator vaults (≤ ``max_users``) and how they were found."""
    fallback_vaults = known_liquidators(fallback)[:max_users]
    try:
        found = []
        for child in vault_children(await info.vault_details(hlp_vault)):
            name = vault_name(await info.vault_details(child))
            if "liquidator" in name.lower():
                found.append(Vault(child.lower(), name))
        if not found:
            raise ParseError("missing_field", "no child vault of HLP is named 'Liquidator'")
        return found[:max_users], f"vaultDetails of {hlp_vault}"
    except (RestError, ParseError) as exc:
        log.warning("liquidator discovery failed (%s); using the known addresses %s", exc,
                    [v.address for v in fallback_vaults])
        return fallback_vaults, f"known addresses (discovery failed: {exc})"


async def discover_coins(info: InfoClient, now_ms: Callable[[], int]) -> tuple[list[str], list[Event]]:
    """The listed perps and their bootstrap marks."""
    obj = await info.meta_and_asset_ctxs()
    return perp_coins(obj), list(parse_meta_and_asset_ctxs(obj, now_ms()))


@dataclass
class VaultState:
    vault: Vault
    account_value: float | None = None
    time_ms: int | None = None
    polls: int = 0
    errors: int = 0
    last_error: str = ""
    bootstrapped: bool = False

    @property
    def shortfall_usd(self) -> float | None:
        return None if self.account_value is None else max(0.0, -self.account_value)


class VaultStatePoller:
    """Polls ``clearinghouseState`` of the vaults every ``interval_s`` (module docstring).

    ``on_bootstrap(snapshot)`` is called (before publishing) with the first
    snapshot of each vault, so the websocket side can drop fills it already holds.
    """

    def __init__(self, info: InfoClient, vaults: list[Vault],
                 publish: Callable[[list[Event]], Awaitable[None]], *, interval_s: float,
                 now_ms: Callable[[], int], metrics=None,
                 on_bootstrap: Callable[[AccountSnapshot], None] | None = None):
        self.info = info
        self.vaults = vaults
        self.publish = publish
        self.interval_s = interval_s
        self.now_ms = now_ms
        self.metrics = metrics
        self.on_bootstrap = on_bootstrap
        self.states = {v.address: VaultState(v) for v in vaults}
        # the same error logged once per vault, then counted (issue 8 §3)
        self._failures = {v.address: RepeatedFailure(log) for v in vaults}
        self.last_success_wall: float | None = None

    @property
    def healthy(self) -> bool:
        return bool(self.states) and all(s.time_ms is not None for s in self.states.values()) \
            and self.last_success_wall is not None \
            and time.time() - self.last_success_wall < max(3 * self.interval_s, 30.0)

    @property
    def bootstrapped(self) -> bool:
        return all(s.bootstrapped for s in self.states.values())

    async def poll_once(self) -> None:
        for state in self.states.values():
            addr = state.vault.address
            try:
                obj = await self.info.clearinghouse_state(addr)
                snap = parse_clearinghouse_state(addr, obj, self.now_ms())
            except (RestError, ParseError) as exc:
                self._failed(state, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - an answer of a shape the parser missed
                self._failed(state, exc, exc_info=exc)
                continue
            self._failures[addr].recovered()
            state.polls += 1
            state.account_value = snap.account_value
            state.time_ms = snap.time_ms
            self.last_success_wall = time.time()
            if not state.bootstrapped:
                state.bootstrapped = True
                if self.on_bootstrap is not None:
                    self.on_bootstrap(snap)
                await self.publish([snap])
            if self.metrics is not None and snap.account_value is not None:
                self.metrics.set_insurance_fund(VENUE, slug(state.vault.name), snap.account_value,
                                                time_ms=snap.time_ms)
        if self.metrics is not None:
            known = [s.shortfall_usd for s in self.states.values() if s.shortfall_usd is not None]
            if known:
                self.metrics.set_deficit(VENUE, sum(known))

    def _failed(self, state: VaultState, exc: Exception, exc_info=None) -> None:
        """One failed poll of one vault: counted per vault, logged once per distinct error
        (an answer of an unexpected shape with its traceback); the poll goes on."""
        state.errors += 1
        state.last_error = str(exc) if isinstance(exc, (RestError, ParseError)) \
            else f"{exc.__class__.__name__}: {exc}"
        failures = self._failures[state.vault.address]
        if exc_info is not None and failures.key != ("failed", state.last_error):
            log.warning("clearinghouseState of vault %s: unexpected answer", state.vault.name,
                        exc_info=exc_info)
        failures.failed(f"clearinghouseState of vault {state.vault.name}", "failed",
                        state.last_error, self.interval_s)

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval_s)

    def status(self) -> dict:
        return {
            "kind": "rest",
            "healthy": self.healthy,
            "vaults": {s.vault.address: {
                "name": s.vault.name, "account_value_usd": s.account_value,
                "shortfall_usd": s.shortfall_usd, "time_ms": s.time_ms, "polls": s.polls,
                "errors": s.errors, "last_error": s.last_error, "bootstrapped": s.bootstrapped,
            } for s in self.states.values()},
        }


_WINNER_ERRORS = ErrorLog(log, first=3, every=100)


async def poll_winners(info: InfoClient, users: Iterable[str], *, max_users: int,
                       budget_s: float, now_ms: Callable[[], int],
                       clock: Callable[[], float] = time.monotonic) -> tuple[list[AccountSnapshot], list[dict]]:
    """``clearinghouseState`` of up to ``max_users`` winners within ``budget_s``.

    Returns the snapshots (for the ledger) and one capacity record per account
    read: account value, unrealized PnL and PnL capacity (uPnL)+ *after* the
    wave, ``source: "clearinghouseState"``. Unread accounts are simply absent.
    """
    snaps: list[AccountSnapshot] = []
    records: list[dict] = []
    deadline = clock() + budget_s
    for user in list(users)[:max_users]:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        try:
            obj = await asyncio.wait_for(info.clearinghouse_state(user), remaining)
            snap = parse_clearinghouse_state(user, obj, now_ms())
            upnl = unrealized_pnl(obj)
        except (RestError, ParseError, asyncio.TimeoutError) as exc:
            log.debug("winner %s: clearinghouseState failed: %s", user, exc)
            continue
        except Exception as exc:  # noqa: BLE001 - an answer of a shape the parser missed
            _WINNER_ERRORS.log(exc.__class__.__name__, "winner %s: clearinghouseState "
                               "unusable (%s: %s); skipped", user, exc.__class__.__name__, exc)
            continue
        snaps.append(snap)
        records.append({"user": user, "time_ms": snap.time_ms,
                        "account_value_usd": snap.account_value, "unrealized_pnl_usd": upnl,
                        "pnl_capacity_usd": max(0.0, upnl), "source": "clearinghouseState"})
    return snaps, records
