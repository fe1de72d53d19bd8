"""The FPS QR payload: its fields (read back as EMVCo TLV), and its CRC checked against independent values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from carts.fps import FpsError, FpsRequest, crc16_ccitt, fps_payload


def _tlv(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    while text:
        tag, length = text[:2], int(text[2:4])
        fields[tag], text = text[4 : 4 + length], text[4 + length :]
    return fields


def _crc_reference(data: bytes) -> int:
    """CRC-16/CCITT-FALSE written the other way round (a 256-entry table), to check the builder's loop."""
    table = []
    for i in range(256):
        value = i << 8
        for _ in range(8):
            value = (value << 1) ^ 0x1021 if value & 0x8000 else value << 1
        table.append(value & 0xFFFF)
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"123456789", 0x29B1),  # the catalogued check value of CRC-16/CCITT-FALSE
        (b"", 0xFFFF),
        (b"A", 0xB915),
    ],
)
def test_crc_matches_published_check_values(data: bytes, crc: int) -> None:
    assert crc16_ccitt(data) == crc


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (
            FpsRequest("1234567", Decimal("280"), "PO-000042", "Blossom Florist"),
            {"54": "280.00", "59": "Blossom Florist", "reference": "PO-000042", "proxy": "1234567"},
        ),
        (
            FpsRequest("123456789", Decimal("0.5"), "PO-000001"),
            {"54": "0.50", "59": None, "reference": "PO-000001", "proxy": "123456789"},
        ),
        (
            FpsRequest("7654321", Decimal("1280.00"), "PO-123456", "A very long shop name that goes on"),
            {"54": "1280.00", "59": "A very long shop name tha", "reference": "PO-123456", "proxy": "7654321"},
        ),
    ],
)
def test_payload_fields_and_crc(request_: FpsRequest, fields: dict[str, str | None]) -> None:
    payload = fps_payload(request_)
    top = _tlv(payload)
    assert top["00"] == "01" and top["01"] == "12"
    assert _tlv(top["26"]) == {"00": "hk.com.hkicl", "02": fields["proxy"]}
    assert top["53"] == "344" and top["58"] == "HK"
    assert top["54"] == fields["54"]
    assert top.get("59") == fields["59"]
    assert _tlv(top["62"]) == {"05": fields["reference"]}
    assert list(top)[-1] == "63"
    assert top["63"] == f"{_crc_reference(payload[:-4].encode()):04X}"


def test_known_payload_exactly() -> None:
    body = "00020101021226270012hk.com.hkicl0207123456752040000530334454071280.005802HK6002HK62130509PO-0000426304"
    assert (
        fps_payload(FpsRequest("1234567", Decimal("1280"), "PO-000042"))
        == body + f"{_crc_reference(body.encode()):04X}"
    )


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        (FpsRequest("12ab567", Decimal(1), "PO-1"), "7 to 9 digits"),
        (FpsRequest("1234567", Decimal(0), "PO-1"), "above zero"),
        (FpsRequest("1234567", Decimal(1), "訂單"), "plain letters"),
        (FpsRequest("1234567", Decimal(1), "   "), "must not be empty"),
    ],
)
def test_values_a_payload_cannot_carry_are_refused(request_: FpsRequest, problem: str) -> None:
    with pytest.raises(FpsError, match=problem):
        fps_payload(request_)
