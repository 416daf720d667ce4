"""The ancillary resources of a timed-text track file: the fonts and subtitle pictures (PNG) that a SMPTE DCP's
subtitle track (ST 429-5) or an IMF package's IMSC1 track (ST 2067-2) carries beside its XML document.

Each resource is the body of a generic stream partition of its own, whose BodySID is the resource's stream id. The
document names a resource by its UUID (`<Image>urn:uuid:...</Image>` in a DCP's SubtitleReel,
`smpte:backgroundImage="urn:uuid:..."` on an IMSC1 div). The header metadata pairs the two: one
TimedTextResourceSubDescriptor per resource, whose items are its instance UID, the resource's UUID, its MIME type and
its stream id (the set's one 4-byte item). The sets are read by their items, not by their keys, so that a writer's
dictionary version does not matter: a set that holds a UUID the document cites and one 4-byte item is that resource's.
"""
from __future__ import annotations

import re
import uuid
from typing import Iterator, Optional

KLV = b"\x06\x0e\x2b\x34"
PARTITION_PACK = bytes.fromhex("060e2b34020501010d01020101")  # then kind (02 header, 03 body, 04 footer), status
GENERIC_STREAM = (0x03, 0x11)  # a body partition holding a generic stream (ST 410)
INSTANCE_UID_TAG = 0x3C0A
BODY_SID_AT = 60  # in a partition pack: versions 2+2, KAG 4, five offsets 8 each, IndexSID 4, BodyOffset 8


def _length(data: bytes, at: int) -> tuple[int, int]:
    """A BER length at `at` -> (length, where the value starts)."""
    first = data[at]
    if first < 0x80:
        return first, at + 1
    n = first & 0x7F
    return int.from_bytes(data[at + 1:at + 1 + n], "big"), at + 1 + n


def klv_items(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each top-level KLV item, from the first partition pack (a run-in before it is skipped) to the
    end or to the first bytes that are not one."""
    at = data.find(PARTITION_PACK)
    while 0 <= at and at + 17 <= len(data) and data[at:at + 4] == KLV:
        length, start = _length(data, at + 16)
        if start + length > len(data):
            return  # cut short (the track file was read up to a size limit)
        yield data[at:at + 16], data[start:start + length]
        at = start + length


def _is_fill(key: bytes) -> bool:
    return key[8:12] == bytes.fromhex("03010210")


def _local_set(value: bytes) -> list[tuple[int, bytes]]:
    """A local set's (2-byte tag, value) items; [] where its value is not one."""
    items, at = [], 0
    while at + 4 <= len(value):
        tag, length = int.from_bytes(value[at:at + 2], "big"), int.from_bytes(value[at + 2:at + 4], "big")
        if at + 4 + length > len(value):
            return []
        items.append((tag, value[at + 4:at + 4 + length]))
        at += 4 + length
    return items


def ancillary_resources(data: bytes) -> dict[str, bytes]:
    """{resource UUID (as str(uuid.UUID)): its bytes} for each resource of the track file whose stream id its header
    metadata gives; {} for a file without them."""
    streams: dict[int, bytes] = {}
    stream_of: dict[bytes, int] = {}  # every 16-byte item (but instance UIDs) of a set with one 4-byte item
    waiting: Optional[int] = None  # the BodySID of the generic stream partition just read
    for key, value in klv_items(data):
        if key.startswith(PARTITION_PACK):
            waiting = (int.from_bytes(value[BODY_SID_AT:BODY_SID_AT + 4], "big")
                       if (key[13], key[14]) == GENERIC_STREAM and len(value) >= BODY_SID_AT + 4 else None)
        elif waiting is not None and not _is_fill(key):
            streams[waiting], waiting = value, None
        elif key[4:6] == b"\x02\x53":  # a local set: 2-byte tags, 2-byte lengths
            items = _local_set(value)
            numbers = [v for _, v in items if len(v) == 4]
            if len(numbers) == 1:
                for tag, v in items:
                    if len(v) == 16 and tag != INSTANCE_UID_TAG:
                        stream_of[v] = int.from_bytes(numbers[0], "big")
    return {str(uuid.UUID(bytes=ident)): streams[sid] for ident, sid in stream_of.items() if sid in streams}


_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def resource_id(ref: str) -> Optional[str]:
    """The UUID a document's reference names ('urn:uuid:...', or the bare UUID some writers give), as str(uuid.UUID);
    None for another kind of reference (a file name)."""
    m = _UUID.fullmatch(ref.strip().removeprefix("urn:uuid:"))
    return str(uuid.UUID(m.group(0))) if m else None
