"""Hong Kong FPS (Faster Payment System) QR codes: the EMVCo merchant-presented payload. Pure: data, no I/O.

The payload is a run of ID-length-value fields (EMV QRCPS Merchant-Presented Mode, as HKICL's "Common QR
Code Specification" uses it): the FPS proxy (an FPS id, a mobile number or an email) under the
merchant-account template "26" with HKICL's GUID `hk.com.hkicl`, the currency (344, Hong Kong dollars),
the amount, the reference under the additional-data template "62", and the CRC16-CCITT of it all in "63".
A banking app that scans it fills in payee, amount and reference; the shopper only confirms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

FPS_GUID = "hk.com.hkicl"
HKD_NUMERIC = "344"  # ISO 4217
AMOUNT_MAX = Decimal("9999999999.99")
NAME_MAX = 25  # EMVCo's limits on the merchant name and a reference label
REFERENCE_MAX = 25
FPS_ID = re.compile(r"[0-9]{7,9}")  # an FPS id as HKICL issues them


class FpsError(ValueError):
    """A value the payload cannot carry."""


@dataclass(frozen=True, slots=True)
class FpsRequest:
    fps_id: str
    amount: Decimal
    reference: str
    name: str = ""  # the payee's name, shown by some apps


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection), as EMVCo's field "63" wants."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _field(tag: str, value: str) -> str:
    if not 0 < len(value) < 100:
        raise FpsError(f"field {tag} must be 1 to 99 characters")
    return f"{tag}{len(value):02d}{value}"


def _plain(text: str, limit: int, what: str) -> str:
    """Printable ASCII only: banking apps differ on anything else, and EMVCo counts characters, not bytes."""
    text = " ".join(text.split())
    if not text.isascii() or not text.isprintable():
        raise FpsError(f"the {what} must be plain letters, digits and punctuation")
    return text[:limit]


def fps_payload(request: FpsRequest) -> str:
    """The QR code's text for paying `request.amount` HKD to `request.fps_id`, quoting `request.reference`."""
    if not FPS_ID.fullmatch(request.fps_id):
        raise FpsError("an FPS id is 7 to 9 digits")
    if not Decimal(0) < request.amount <= AMOUNT_MAX:
        raise FpsError("the amount must be above zero")
    reference = _plain(request.reference, REFERENCE_MAX, "reference")
    if not reference:
        raise FpsError("the reference must not be empty")
    account = _field("00", FPS_GUID) + _field("02", request.fps_id)
    parts = [
        _field("00", "01"),  # payload format indicator
        _field("01", "12"),  # dynamic: this code is for one payment (it carries the amount)
        _field("26", account),
        _field("52", "0000"),  # merchant category code: not given
        _field("53", HKD_NUMERIC),
        _field("54", f"{request.amount.quantize(Decimal('0.01'))}"),
        _field("58", "HK"),
    ]
    name = _plain(request.name, NAME_MAX, "name") if request.name else ""
    if name:
        parts.append(_field("59", name))
    parts += [_field("60", "HK"), _field("62", _field("05", reference))]
    body = "".join(parts) + "6304"
    return f"{body}{crc16_ccitt(body.encode('ascii')):04X}"
