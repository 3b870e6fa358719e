"""Cosmos addresses of dYdX module accounts (venues-wire.md §1.9), pure.

``module_address("insurance_fund") == "dydx1c7ptc87hkd54e3r7zjy92q29xkq7t79w64slrq"``:
bech32 (BIP-173, prefix ``dydx``) of the first 20 bytes of sha256(name), as
the Cosmos SDK's ``authtypes.NewModuleAddress``.
"""

from __future__ import annotations

import hashlib

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32(hrp: str, data: bytes) -> str:
    """BIP-173 bech32 of ``data`` (8-bit bytes regrouped to 5 bits)."""
    acc, bits, five = 0, 0, []
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            five.append((acc >> bits) & 31)
    if bits:
        five.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod(expanded + five + [0] * 6) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in five + checksum)


def module_address(name: str) -> str:
    """A Cosmos module account's address: bech32("dydx", sha256(name)[:20]) (venues-wire §1.9)."""
    return bech32("dydx", hashlib.sha256(name.encode()).digest()[:20])
