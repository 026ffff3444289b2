"""Reading TensorBoard event files back, record by record, for tests: TFRecord framing + tensorboardX's Event proto.

A record is an 8-byte little-endian length, a 4-byte masked CRC-32C of that length, the serialized ``Event``
and a 4-byte masked CRC-32C of it. The CRCs are checked, so a torn or garbled file fails the test instead of
reading as fewer values.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

from tensorboardX.crc32c import crc32c
from tensorboardX.proto.event_pb2 import Event


def _masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path: Path) -> Iterator[bytes]:
    """The payloads of a TFRecord file, each CRC checked."""
    data = Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert header_crc == _masked(header), f"{path}: bad length CRC at byte {pos}"
        payload = data[pos + 12:pos + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert len(payload) == length and payload_crc == _masked(payload), f"{path}: bad record at byte {pos}"
        yield payload
        pos += 16 + length


def scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Tag -> step -> value of every scalar in the event files of ``folder``."""
    found: dict[str, dict[int, float]] = {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for payload in records(path):
            event = Event.FromString(payload)
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def value_kinds(folder: Path) -> set[str]:
    """The kinds of summary values (simple_value, histo, ...) the event files of ``folder`` hold."""
    kinds: set[str] = set()
    for path in Path(folder).glob("events.out.tfevents.*"):
        for payload in records(path):
            kinds |= {value.WhichOneof("value") for value in Event.FromString(payload).summary.value}
    return kinds
