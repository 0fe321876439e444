#!/usr/bin/env python3
"""Generate the shared frame-decoder test vectors (test/vectors/*.bin + manifest.json).

Standalone on purpose: it builds frames byte by byte with struct + hashlib and must not import
the project's encoder or decoder, so the vectors are an independent statement of the format.
Both the TypeScript tests (test/frame-vectors.test.ts) and the Python tests read the output.

Every vector's expected events are written down by construction (what the bytes were built to
contain). As a guard against mistakes in that bookkeeping, each vector is also run through the
tiny whole-buffer reference decoder below and the two must agree, or nothing is written.

Run: python3 test/vectors/make_vectors.py   (deterministic: fixed seed; the outputs are committed)
"""

import hashlib
import json
import os
import random
import struct
import zlib

MAX_FRAME_BYTES = 4096
BEGIN = b"KPYS"
END = b"KPYE"
VERSION = 1
# VERSION 2: the CHECKSUM field holds the CRC32 of the payload (big-endian) in its first 4 bytes, then 12 zeros.
VERSION_CRC32 = 2
HERE = os.path.dirname(os.path.abspath(__file__))

rng = random.Random(20240611)


def md5(data):
    return hashlib.md5(data).digest()


def crc32_field(data):
    return struct.pack(">I", zlib.crc32(data)) + bytes(12)


def checksum_of(version, data):
    return crc32_field(data) if version == VERSION_CRC32 else md5(data)


def frame(payload, version=VERSION, checksum=None, length=None, end=END):
    """A frame around payload; any field can be overridden to build a damaged one."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return (
        BEGIN
        + bytes([version])
        + (checksum_of(version, payload) if checksum is None else checksum)
        + struct.pack(">I", len(payload) if length is None else length)
        + payload
        + end
    )


def random_bytes(n, allow_k=True):
    """n seeded random bytes that never contain BEGIN (and, if not allow_k, no 'K' at all)."""
    out = bytearray()
    while len(out) < n:
        b = rng.getrandbits(8)
        if b == 0x4B and not allow_k:
            continue
        out.append(b)
        if out.endswith(BEGIN):
            out.pop()
    return bytes(out)


def k_fragments(n):
    """Garbage made of near-misses of the markers: K, KP, KPY, KPYE, PYS, ... never KPYS."""
    parts = [b"K", b"KP", b"KPY", b"KPYE", b"PYS", b"YS", b"S", b"KK", b"KPK", b"KPYK", b"\x01"]
    out = b""
    while len(out) < n:
        candidate = out + rng.choice(parts)
        if BEGIN not in candidate:
            out = candidate
    return out[:n]


def request(cmd, rid, **options):
    return json.dumps({"Cmd": cmd, "CmdVer": 1, "Id": rid, "CmdOptions": options}, separators=(",", ":"))


def ok(payload):
    return {"event": "frame", "payload": payload}


def err(kind, payload=None):
    event = {"event": "error", "kind": kind}
    if payload is not None:
        event["payload"] = payload
    return event


def reference_decode(data, max_frame_bytes):
    """Whole-buffer statement of the decoder contract: (events, total skipped)."""
    events, skipped, i, n = [], 0, 0, len(data)
    while True:
        j = data.find(BEGIN, i)
        if j < 0:
            keep = 0
            for k in (3, 2, 1):
                if n - i >= k and data[n - k:] == BEGIN[:k]:
                    keep = k
                    break
            return events, skipped + (n - i - keep)
        skipped += j - i
        i = j
        if n - i < 5:
            return events, skipped
        if data[i + 4] not in (VERSION, VERSION_CRC32):
            events.append(err("bad-version"))
            i += 4
            continue
        if n - i < 25:
            return events, skipped
        (length,) = struct.unpack(">I", data[i + 21:i + 25])
        if length > max_frame_bytes:
            events.append(err("too-long"))
            i += 4
            continue
        if n - i < 29 + length:
            return events, skipped
        if data[i + 25 + length:i + 29 + length] != END:
            events.append(err("missing-end"))
            i += 4
            continue
        payload = data[i + 25:i + 25 + length]
        text = payload.decode("utf-8")
        events.append(ok(text) if checksum_of(data[i + 4], payload) == data[i + 5:i + 21] else err("bad-checksum", text))
        i += 29 + length


vectors = []


def vector(name, description, parts, expect, skipped):
    data = b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)
    ref_events, ref_skipped = reference_decode(data, MAX_FRAME_BYTES)
    if ref_events != expect or ref_skipped != skipped:
        raise SystemExit(
            "vector %s: construction says %r / skipped %d, reference decoder says %r / skipped %d"
            % (name, expect, skipped, ref_events, ref_skipped)
        )
    vectors.append(
        {"name": name, "file": name + ".bin", "description": description, "expect": expect, "skipped": skipped, "data": data}
    )


def big_payload(size):
    head, tail = '{"Cmd":"executeModel","Id":99,"Blob":"', '"}'
    filler = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(size - len(head) - len(tail)))
    text = head + filler + tail
    assert len(text.encode("utf-8")) == size
    return text


# --- valid streams ---------------------------------------------------------------------------

hello = request("hello", 1, Token="t0k3n")
vector("valid-single", "one good frame", [frame(hello)], [ok(hello)], 0)

many = [request("executeModel", i, ModelName="add", InputDictionary={"a": i, "b": i * i}) for i in range(1, 11)]
vector("valid-many", "10 good frames back to back", [frame(p) for p in many], [ok(p) for p in many], 0)

vector("valid-empty-object", 'payload "{}"', [frame("{}")], [ok("{}")], 0)

vector(
    "valid-empty-payload",
    "LENGTH 0: a good frame with an empty payload (the JSON layer rejects it, not the decoder)",
    [frame(""), frame(hello)],
    [ok(""), ok(hello)],
    0,
)

unicode = json.dumps({"Cmd": "executeModel", "Id": 5, "text": "héllo wörld — 日本語 🎉 Ω"}, ensure_ascii=False)
vector("valid-unicode", "non-ASCII UTF-8 payload (2-, 3- and 4-byte sequences)", [frame(unicode)], [ok(unicode)], 0)

biggest = big_payload(MAX_FRAME_BYTES)
vector(
    "valid-max-size",
    "payload of exactly maxFrameBytes (4096) bytes, then a small frame",
    [frame(biggest), frame("{}")],
    [ok(biggest), ok("{}")],
    0,
)

small = [json.dumps({"Id": i, "v": rng.randint(0, 10**6)}) for i in range(100)]
vector("valid-100-small", "100 small frames back to back", [frame(p) for p in small], [ok(p) for p in small], 0)

vector("not-json", "a good frame whose payload is not JSON: the decoder emits it", [frame("this is not json")], [ok("this is not json")], 0)

vector("json-array", "a good frame whose payload is a JSON array, not an object", [frame("[1,2,3]")], [ok("[1,2,3]")], 0)

# --- garbage and resync ----------------------------------------------------------------------

g = random_bytes(200)
vector("garbage-prefix", "200 random bytes (may contain K, never KPYS) then a good frame", [g, frame(hello)], [ok(hello)], 200)

g1, g2, g3 = random_bytes(37), random_bytes(101), random_bytes(1)
p1, p2, p3 = request("serverStatus", 1), request("serverStatus", 2), request("serverStatus", 3)
vector(
    "garbage-between",
    "random garbage before, between and after good frames",
    [g3, frame(p1), g1, frame(p2), g2, frame(p3)],
    [ok(p1), ok(p2), ok(p3)],
    1 + 37 + 101,
)

kg = k_fragments(64)
vector("marker-fragments", "64 bytes of near-miss markers (K, KP, KPY, KPYE, ...) then a good frame", [kg, frame(hello)], [ok(hello)], 64)

vector(
    "partial-begin-in-garbage",
    '"KPY" then a good frame: the partial BEGIN is garbage, the real one right after it is found',
    [b"KPY", frame(hello)],
    [ok(hello)],
    3,
)

vector(
    "partial-begins-repeated",
    '"KPKKPY" then a good frame',
    [b"KPKKPY", frame(hello)],
    [ok(hello)],
    6,
)

vector("end-marker-between", 'a stray "KPYE" between two good frames', [frame(p1), END, frame(p2)], [ok(p1), ok(p2)], 4)

tail_garbage = random_bytes(50, allow_k=False)
vector("trailing-garbage", "a good frame then 50 garbage bytes without K: all 50 reported skipped", [frame(hello), tail_garbage], [ok(hello)], 50)

vector(
    "trailing-partial-begin",
    'a good frame then "KPY" at the end of the stream: kept as a possible BEGIN, not reported skipped',
    [frame(hello), b"KPY"],
    [ok(hello)],
    0,
)

cut = frame(p2)
vector(
    "truncated-at-end",
    "a good frame then the first 40 bytes of another: nothing more is reported (the decoder waits)",
    [frame(p1), cut[:40]],
    [ok(p1)],
    0,
)

vector(
    "truncated-header-at-end",
    "a good frame then the first 12 bytes of another (header incomplete)",
    [frame(p1), cut[:12]],
    [ok(p1)],
    0,
)

# --- damaged frames --------------------------------------------------------------------------

bad_sum_payload = request("executeModel", 7, ModelName="add", InputDictionary={"a": 1})
wrong_sum = bytes(b ^ 0xFF for b in md5(bad_sum_payload.encode()))
vector(
    "bad-checksum-then-good",
    "CHECKSUM is not the MD5 of the payload (which still parses, Id 7), then a good frame",
    [frame(bad_sum_payload, checksum=wrong_sum), frame(hello)],
    [err("bad-checksum", bad_sum_payload), ok(hello)],
    0,
)

original = request("executeModel", 8, ModelName="add", InputDictionary={"a": 1, "b": 2})
corrupted = original.replace('"b":2', '"b":3')
vector(
    "bad-checksum-corrupted-payload",
    "payload changed after its MD5 was computed (one digit), then a good frame",
    [frame(corrupted, checksum=md5(original.encode())), frame(hello)],
    [err("bad-checksum", corrupted), ok(hello)],
    0,
)


def rescanned(bad):
    """Bytes a resync scans past: everything of the damaged frame after its 4 BEGIN bytes."""
    assert BEGIN not in bad[1:], "damaged frame accidentally contains a second BEGIN"
    return len(bad) - 4


bad_v3 = frame(request("executeModel", 9, ModelName="add"), version=3, checksum=md5(b"x"))
vector(
    "bad-version-then-good",
    "VERSION 3, then a good frame; the rest of the bad frame is scanned past as garbage",
    [bad_v3, frame(hello)],
    [err("bad-version"), ok(hello)],
    rescanned(bad_v3),
)

crc_request = request("executeModel", 10, ModelName="add")
vector(
    "crc32-frames",
    "VERSION 2 (CRC32) frames between VERSION 1 (MD5) frames: both are good at any point of a stream",
    [frame(hello), frame(crc_request, version=VERSION_CRC32), frame(p1), frame("{}", version=VERSION_CRC32)],
    [ok(hello), ok(crc_request), ok(p1), ok("{}")],
    0,
)

crc_wrong = bytearray(crc32_field(crc_request.encode()))
crc_wrong[3] ^= 0x01
crc_padded = crc32_field(crc_request.encode())[:4] + bytes(11) + b"\x01"
vector(
    "crc32-bad-checksum",
    "VERSION 2 with a CRC32 one bit off, then with the right CRC32 but a non-zero byte after it, then a good frame",
    [frame(crc_request, version=VERSION_CRC32, checksum=bytes(crc_wrong)),
     frame(crc_request, version=VERSION_CRC32, checksum=crc_padded), frame(p1)],
    [err("bad-checksum", crc_request), err("bad-checksum", crc_request), ok(p1)],
    0,
)

bad_v0 = frame("{}", version=0)
vector(
    "bad-version-zero",
    "VERSION 0, then a good frame",
    [bad_v0, frame(p1)],
    [err("bad-version"), ok(p1)],
    rescanned(bad_v0),
)

vector(
    "begin-begin",
    '"KPYS" directly followed by a good frame: VERSION reads as "K" (bad-version), then the frame is found',
    [BEGIN, frame(hello)],
    [err("bad-version"), ok(hello)],
    0,
)

too_long_header = frame(b"", length=MAX_FRAME_BYTES + 1)[:25]
junk = random_bytes(64, allow_k=False)
vector(
    "too-long-then-good",
    "LENGTH 4097 > maxFrameBytes (decided from the header alone), 64 bytes of junk, then a good frame",
    [too_long_header, junk, frame(hello)],
    [err("too-long"), ok(hello)],
    21 + 64,
)

huge_header = frame(b"", length=0xFFFFFFFF)[:25]
vector(
    "too-long-max-uint32",
    "LENGTH 0xFFFFFFFF, then a good frame right after the header",
    [huge_header, frame(hello)],
    [err("too-long"), ok(hello)],
    21,
)

short_payload = request("executeModel", 10, ModelName="add", InputDictionary={"a": 4})
short = frame(short_payload, length=len(short_payload) - 5)
vector(
    "missing-end-then-good",
    "LENGTH says 5 bytes fewer than were written, so END is not where it should be; then a good frame",
    [short, frame(hello)],
    [err("missing-end"), ok(hello)],
    rescanned(short),
)

wrong_end = frame(hello, end=b"KPYX")
vector(
    "missing-end-wrong-marker",
    'END is "KPYX"; then a good frame',
    [wrong_end, frame(p1)],
    [err("missing-end"), ok(p1)],
    rescanned(wrong_end),
)

claimed = 600
hidden = request("executeModel", 11, ModelName="add", InputDictionary={"a": 5, "b": 6})
truncated_header = BEGIN + bytes([VERSION]) + random_bytes(16, allow_k=False) + struct.pack(">I", claimed)
filler = bytes(claimed + 4 - len(frame(hidden)) + 30)
last = request("serverStatus", 12)
vector(
    "truncated-hiding-frame",
    "a header claiming 600 bytes, but only a good frame and zero filler follow: missing-end is reported once "
    "the claimed END position is reached, then the hidden frame is found by the resync, then the last frame",
    [truncated_header, frame(hidden), filler, frame(last)],
    [err("missing-end"), ok(hidden), ok(last)],
    21 + len(filler),
)

# One stream with every event kind, for the chunking tests to cut through.
m1, m2, m3, m4 = (request("executeModel", i, ModelName="mix", InputDictionary={"i": i}) for i in range(20, 24))
mixed_bad_sum = frame(m2, checksum=bytes(16))
mixed_bad_version = frame("{}", version=7)
mixed_short = frame(m4, length=len(m4) - 1)
mixed_garbage = random_bytes(33)
vector(
    "mixed",
    "good, bad-checksum, garbage, bad-version, good, too-long, good, missing-end, good, partial BEGIN, good",
    [
        frame(m1),
        mixed_bad_sum,
        mixed_garbage,
        mixed_bad_version,
        frame(m3),
        too_long_header,
        frame(p1),
        mixed_short,
        frame(p2),
        b"KP",
        frame(p3),
    ],
    [
        ok(m1),
        err("bad-checksum", m2),
        err("bad-version"),
        ok(m3),
        err("too-long"),
        ok(p1),
        err("missing-end"),
        ok(p2),
        ok(p3),
    ],
    33 + rescanned(mixed_bad_version) + 21 + rescanned(mixed_short) + 2,
)

# --- protocol 1.1: the frames of self.context (state changes, host requests) -------------------------
# Payloads exactly as each side writes them (docs/protocol.md, "Partition state" and "Host requests"):
# a server's hostRequest while request 7 runs, the client's hostReply (an answer, then an error), and
# request 7's lean reply carrying its state changes (a set and a delete) before Result.
host_request = ('{"Cmd":"hostRequest","Id":7,"Code":3,"Seq":1,"Kind":"call","Name":"lookup","Index":2,'
                '"TimeoutMs":30000,"Payload":{"id":12345678901234567890}}')
cache_set = ('{"Cmd":"hostRequest","Id":7,"Code":3,"Seq":2,"Kind":"cache.set","Name":"rate","Index":2,'
             '"TimeoutMs":30000,"TtlMs":60000,"Payload":{"eur":1.08}}')
host_reply = '{"Cmd":"hostReply","CmdVer":1,"Seq":1,"Code":0,"Result":{"name":"Ada"}}'
host_error = ('{"Cmd":"hostReply","CmdVer":1,"Seq":2,"Code":-5,"Error":{"Type":"HandlerError",'
              '"Message":"it broke","Traceback":null}}')
state_reply = ('{"Cmd":"executeBatch","Id":7,"Code":0,"Errors":[],"Files":[],"State":[["count",3],["gone"]],'
               '"Result":[{"n":1},null,{"n":3}]}')
vector(
    "context-exchange",
    "a hostRequest (Code 3), its hostReply, a cache.set request, an error hostReply, then the lean reply with State",
    [frame(host_request), frame(host_reply), frame(cache_set), frame(host_error), frame(state_reply)],
    [ok(host_request), ok(host_reply), ok(cache_set), ok(host_error), ok(state_reply)],
    0,
)


def main():
    names = set()
    manifest = {
        "maxFrameBytes": MAX_FRAME_BYTES,
        "note": (
            "skipped = total bytes dropped while scanning for BEGIN. The 4 BEGIN bytes dropped on bad-version, "
            "too-long and missing-end are not counted; the bytes after them that the resync scans past are. "
            "Up to 3 bytes at the end of the stream that could start a BEGIN are kept, not counted."
        ),
        "vectors": [],
    }
    for v in vectors:
        assert v["name"] not in names, v["name"]
        names.add(v["name"])
        with open(os.path.join(HERE, v["file"]), "wb") as f:
            f.write(v["data"])
        manifest["vectors"].append({k: v[k] for k in ("name", "file", "description", "expect", "skipped")})
    with open(os.path.join(HERE, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote %d vectors to %s" % (len(vectors), HERE))


if __name__ == "__main__":
    main()
