"""The Python decoder against the shared vectors in test/vectors/ (also read by the TypeScript tests)."""
import json
import os
import random
import tracemalloc
import unittest
from typing import Any, Dict, List, Tuple

from pystage.frame_decoder import ERROR, FRAME, SKIPPED, FrameDecoder
from pystage.frame_encoder import encode_frame

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "vectors")
MANIFEST = os.path.join(VECTORS, "manifest.json")


def decode_in_chunks(data: bytes, sizes: List[int], max_frame_bytes: int) -> Tuple[List[Dict[str, Any]], int]:
    """Feed data in chunks of the given sizes; the frame/error events in manifest form, and total skipped."""
    decoder = FrameDecoder(max_frame_bytes)
    events: List[Dict[str, Any]] = []
    skipped = 0
    offset = 0
    for size in sizes:
        for event in decoder.feed(data[offset:offset + size]):
            if event.event == SKIPPED:
                skipped += event.skipped
            elif event.event == FRAME:
                events.append({"event": "frame", "payload": event.payload.decode("utf-8")})
            elif event.event == ERROR:
                entry = {"event": "error", "kind": event.kind}
                if event.payload is not None:
                    entry["payload"] = event.payload.decode("utf-8")
                events.append(entry)
        offset += size
    assert offset >= len(data)
    return events, skipped


def random_sizes(total: int, seed: int) -> List[int]:
    rng = random.Random(seed)
    sizes: List[int] = []
    while sum(sizes) < total:
        sizes.append(rng.choice([1, 2, 3, 4, 7, 25, 29, 64, 500, 4096, 10000]))
    return sizes


class SharedVectorsTest(unittest.TestCase):
    def setUp(self) -> None:
        with open(MANIFEST, encoding="utf-8") as handle:
            self.manifest = json.load(handle)

    def vectors(self) -> List[Tuple[Dict[str, Any], bytes]]:
        out = []
        for vector in self.manifest["vectors"]:
            with open(os.path.join(VECTORS, vector["file"]), "rb") as handle:
                out.append((vector, handle.read()))
        return out

    def check(self, how: str, sizes_for: Any) -> None:
        max_frame_bytes = self.manifest["maxFrameBytes"]
        for vector, data in self.vectors():
            with self.subTest(vector=vector["name"], feeding=how):
                events, skipped = decode_in_chunks(data, sizes_for(data), max_frame_bytes)
                self.assertEqual(events, vector["expect"])
                self.assertEqual(skipped, vector["skipped"])

    def test_whole(self) -> None:
        self.check("whole", lambda data: [len(data)])

    def test_one_byte_chunks(self) -> None:
        self.check("1-byte", lambda data: [1] * len(data))

    def test_random_chunks(self) -> None:
        for seed in (1, 2, 3):
            self.check(f"random seed {seed}", lambda data, seed=seed: random_sizes(len(data), seed))

    def test_all_vectors_concatenated_in_random_chunks(self) -> None:
        # Frames may straddle the boundary between two vectors' bytes; the events must still line up.
        # Skipped counts are not additive across boundaries (a vector may end in a kept partial BEGIN),
        # so only the frame/error sequence is compared here.
        max_frame_bytes = self.manifest["maxFrameBytes"]
        data = b""
        expected: List[Dict[str, Any]] = []
        for vector, blob in self.vectors():
            decoder = FrameDecoder(max_frame_bytes)
            decoder.feed(blob)
            if decoder.buffered:
                continue  # it ends mid-frame, which would swallow the next vector's start
            data += blob
            expected += vector["expect"]
        events, _ = decode_in_chunks(data, random_sizes(len(data), 7), max_frame_bytes)
        self.assertEqual(events, expected)


class EncoderDecoderTest(unittest.TestCase):
    def test_round_trip_of_many_frames_in_odd_chunks(self) -> None:
        payloads = [json.dumps({"Id": i, "text": "é€𝄞" * (i % 5), "pad": "p" * (i * 37 % 300)}).encode()
                    for i in range(200)]
        stream = b"".join(encode_frame(p) for p in payloads)
        for sizes in ([len(stream)], [1] * len(stream), random_sizes(len(stream), 11)):
            decoder = FrameDecoder()
            got: List[bytes] = []
            offset = 0
            for size in sizes:
                got += [e.payload for e in decoder.feed(stream[offset:offset + size]) if e.event == FRAME]
                offset += size
            self.assertEqual(got, payloads)
            self.assertEqual(decoder.buffered, 0)

    def test_header_layout(self) -> None:
        frame = encode_frame(b'{"Cmd":"hello"}')
        self.assertEqual(frame[:4], b"KPYS")
        self.assertEqual(frame[4], 1)
        self.assertEqual(int.from_bytes(frame[21:25], "big"), 15)
        self.assertEqual(frame[25:-4], b'{"Cmd":"hello"}')
        self.assertEqual(frame[-4:], b"KPYE")

    def test_big_frame_fed_in_small_chunks_is_not_recopied(self) -> None:
        # Two 8 MiB frames in 4 KiB chunks. tracemalloc's peak, reset before each feed, shows the most a
        # feed held on top of what was there before it; summed over the feeds, that counts every copy the
        # decoder makes. Growing the partial frame in place and slicing each payload out once adds up to a
        # few times the stream; recopying the partial frame on every chunk would add up to about
        # chunks x frame / 2 (gigabytes here).
        payload = b'{"blob":"' + b"z" * (8 * 1024 * 1024) + b'"}'
        stream = encode_frame(payload) * 2
        chunks = [stream[offset:offset + 4096] for offset in range(0, len(stream), 4096)]
        decoder = FrameDecoder()
        frames = []
        allocated = 0
        tracemalloc.start()
        try:
            for chunk in chunks:
                before, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                events = decoder.feed(chunk)
                _, peak = tracemalloc.get_traced_memory()
                allocated += peak - before
                frames += [e for e in events if e.event == FRAME]
        finally:
            tracemalloc.stop()
        self.assertEqual(len(frames), 2)
        self.assertEqual(frames[1].payload, payload)
        self.assertLess(allocated, 4 * len(stream), f"the decoder allocated {allocated} bytes for {len(stream)}")

    def test_oversize_length_is_rejected_from_the_header(self) -> None:
        decoder = FrameDecoder(max_frame_bytes=10)
        events = decoder.feed(encode_frame(b"x" * 11)[:25])
        self.assertEqual([(e.event, e.kind) for e in events if e.event != SKIPPED], [("error", "too-long")])


if __name__ == "__main__":
    unittest.main()
