"""The partition state's dict-like view and its journal: copies, per-message commit and rollback, limits."""
import json
import unittest

from pystage import StateFullError
from pystage.partition_state import StateJournal, PartitionState


class PartitionStateTest(unittest.TestCase):
    def setUp(self) -> None:
        self.journal = StateJournal()
        self.journal.report = True
        self.state = PartitionState(self.journal, "m")

    def run_message(self, body, fail: bool = False) -> None:
        """One message: body(state), then commit, or rollback when it fails."""
        try:
            body(self.state)
            if fail:
                raise ValueError("failed")
        except ValueError:
            self.journal.rollback()
        else:
            self.journal.commit()

    def test_dict_like_view_and_copies(self) -> None:
        self.journal.begin("m", [])
        self.run_message(lambda s: s.__setitem__("a", {"list": [1, 2]}))
        value = self.state.get("a")
        value["list"].append(3)  # a copy: the state does not change unless assigned
        self.assertEqual(self.state["a"], {"list": [1, 2]})
        self.assertEqual(self.state.get("missing", 7), 7)
        self.assertIn("a", self.state)
        self.assertNotIn(1, self.state)
        self.assertEqual((self.state.keys(), len(self.state), list(self.state)), (["a"], 1, ["a"]))
        self.run_message(lambda s: s.__delitem__("a"))
        self.assertEqual(len(self.state), 0)
        with self.assertRaises(KeyError):
            self.state["a"]
        with self.assertRaises(TypeError):
            self.state[1] = 2  # type: ignore[index]
        with self.assertRaisesRegex(TypeError, "must be JSON"):
            self.state["x"] = float("nan")
        # Made and deleted within one request: the reply needs no entry for it.
        self.assertIsNone(self.journal.reply_state())

    def test_a_failed_message_changes_nothing(self) -> None:
        self.journal.begin("m", [])
        self.run_message(lambda s: (s.__setitem__("a", 1), s.__setitem__("b", 2)))

        def meddle(s: PartitionState) -> None:
            s["a"] = 100
            s["a"] = 101
            del s["b"]
            s["c"] = 3

        self.run_message(meddle, fail=True)
        self.assertEqual({k: self.state[k] for k in self.state}, {"a": 1, "b": 2})
        self.assertEqual(json.loads(self.journal.reply_state() or b"null"), [["a", 1], ["b", 2]])
        self.assertEqual(self.journal.bytes_used, (1 + 1 + 8) * 2)

    def test_writes_only_while_a_message_runs_and_models_are_separate(self) -> None:
        with self.assertRaisesRegex(RuntimeError, "inside execute"):
            self.state["a"] = 1
        other = PartitionState(self.journal, "other")
        self.journal.begin("other", [])
        self.run_message(lambda s: other.__setitem__("a", "theirs"))
        self.journal.finish()
        self.assertIsNone(self.state.get("a"))
        self.assertEqual(other.get("a"), "theirs")

    def test_limit_and_restore(self) -> None:
        self.journal.max_bytes = 40
        self.journal.begin("m", [])
        self.run_message(lambda s: s.__setitem__("k", "x" * 20))
        with self.assertRaises(StateFullError):
            self.state["k2"] = "y" * 20
        self.journal.rollback()
        self.journal.finish()
        self.assertEqual(self.journal.restore({"m": [["n", 41]], "z": [["q", [1]]]}), 2)
        self.assertEqual((self.state.get("n"), self.state.get("k")), (41, None))
        self.assertEqual(self.journal.bytes_used, (1 + 2 + 8) + (1 + 3 + 8))

    def test_keys_count_as_json_and_restore_appends(self) -> None:
        self.journal.begin("m", [])
        key = "\x01" * 10
        self.run_message(lambda s: s.__setitem__(key, 1))
        # Ten six-byte escapes, the value, the entry overhead: what the entry takes on the wire.
        self.assertEqual(self.journal.bytes_used, 60 + 1 + 8)
        self.journal.finish()
        self.assertEqual(self.journal.restore({"m": [["a", 1]]}), 1)
        self.assertEqual(self.journal.restore({"m": [["b", 2, 5000]], "o": [["c", 3]]}, append=True), 3)
        self.assertEqual(self.journal.bytes_used, (1 + 1 + 8) * 3 + 16)
        self.assertEqual(self.journal.restore({"m": [["a", 1]]}), 1, "without Append the state is replaced")
        with self.assertRaises(TypeError):
            self.journal.restore({"m": [["a", 1, "soon"]]})

    def test_ttl_judged_at_the_request_time(self) -> None:
        journal = self.journal
        journal.start("m", 1000)
        journal.begin("m", [])
        self.run_message(lambda s: (s.set("short", 1, ttl=1), s.set("long", 2, ttl=10), s.__setitem__("never", 3)))
        self.assertEqual(json.loads(journal.reply_state() or b"null"), [["short", 1, 2000], ["long", 2, 11000], ["never", 3]])
        journal.finish()
        # A request at 1999 still sees "short"; one at 2000 finds it expired and removes it (a change of its own).
        for now, expected in ((1999, None), (2000, [["short"]])):
            journal.start("m", now)
            journal.begin("m", [])
            self.assertEqual(self.state.get("short"), 1 if now < 2000 else None)
            self.assertEqual(json.loads(journal.reply_state() or b"null"), expected)
            journal.finish()
        self.assertEqual(sorted(self.state.keys()), ["long", "never"])
        with self.assertRaises(ValueError):
            self.state.set("x", 1, ttl=0)

    def test_model_default_ttl_and_abort(self) -> None:
        journal = self.journal
        journal.ttl_ms["m"] = 500
        journal.start("m", 100)
        journal.begin("m", [])
        self.run_message(lambda s: s.__setitem__("a", 1))
        self.assertEqual(json.loads(journal.reply_state() or b"null"), [["a", 1, 600]])
        journal.finish()
        used = journal.bytes_used
        journal.start("m", 200)
        journal.begin("m", [])
        self.run_message(lambda s: (s.__setitem__("a", 2), s.__setitem__("b", 3)))
        journal.abort()  # the reply could not be built: the request did nothing
        journal.finish()
        self.assertEqual((self.state.get("a"), self.state.get("b"), journal.bytes_used), (1, None, used))
        self.assertEqual(journal.expiries["m"], {"a": 600})
