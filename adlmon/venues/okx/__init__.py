"""OKX v5, the venue's face (venues.md §4, venues-wire.md §4; issue 11).

``adl-warning`` is OKX's own ADL state per instFamily (two dated shapes, the
current one silent when normal), ``liquidation-orders`` a sample of
liquidations with the fund's bankruptcy loss, insurance funds by REST.
"""

from __future__ import annotations

import dataclasses

from adlmon.venues.cexface import cex_face
from adlmon.venues.okx import rules
from adlmon.venues.okx.config import OkxConfig

COVERAGE = (
    "Public: the venue's ADL state per instFamily (adl-warning: adl = armed, warning = a "
    "warning; since 2026-06-09 it is pushed only in warning/adl, so silence is read as "
    "normal after adl_silence_ms) with the live fund balance bal while pushed; the "
    "insurance fund by REST (a daily snapshot since 2026-06-09); liquidation-orders, which "
    "OKX says is not every liquidation (figures are lower bounds), sizes in contracts x "
    "ctVal, with bkLoss, the fund's direct draw. Not public: ADL fills, the ADL'd accounts, "
    "the trigger's inputs (the retired fields are empty). With a read-only key: your own "
    "ADL fills and the adl rank of your positions."
)


def _demo_config(cfg: OkxConfig, fake) -> OkxConfig:
    return dataclasses.replace(cfg, enabled=True, ws_url=fake.ws_url("/ws/v5/public"),
                               private_url=fake.ws_url("/ws/v5/private"), rest_url=fake.rest_url)


FACE = cex_face("okx", OkxConfig, COVERAGE, rule=lambda cfg: rules.rule(cfg.adl_silence_ms),
                demo_config=_demo_config)
