"""The output type table, with duck-typed stand-ins for numpy (no third-party package): the encoder alone,
then through a live server (executeModel and executeBatch, with and without --nan-as-null)."""
import json
import math
import unittest
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, List

from pystage.output_encoding import OutputEncoder, OutputEncodingError
from tests.server_fixture import ServerTestCase


class Scalar:
    """Like np.int64 / np.float32 / np.bool_: `.item()` and `.tolist()` give the Python value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def item(self) -> Any:
        return self.value

    def tolist(self) -> Any:
        return self.value


class Array:
    """Like np.ndarray: `.tolist()` gives nested lists (`.item()` would refuse a size above 1)."""

    def __init__(self, rows: List[Any]) -> None:
        self.rows = rows

    def tolist(self) -> List[Any]:
        return [row.tolist() if isinstance(row, Array) else row for row in self.rows]

    def item(self) -> Any:
        raise ValueError("can only convert an array of size 1 to a Python scalar")


class ItemOnly:
    """Something with only `.item()` (e.g. a 0-d tensor-like value)."""

    def item(self) -> float:
        return 2.5


class SelfConverting:
    """A `.tolist()` that returns its own type would loop forever: refused."""

    def tolist(self) -> "SelfConverting":
        return SelfConverting()


class Opaque:
    pass


def text(value: Any, nan_as_null: bool = False) -> str:
    return OutputEncoder(nan_as_null).encode(value).decode("utf-8")


class TypeTableTest(unittest.TestCase):
    def test_plain_values_are_what_json_dumps_writes(self) -> None:
        value = {"s": "é\"\n", "i": 12345678901234567890123, "f": 0.1, "t": True, "n": None, "l": [1, [2, {}]]}
        self.assertEqual(text(value), json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def test_numpy_like_scalars_and_arrays(self) -> None:
        value = {"label": Scalar(1), "f32": Scalar(1.5), "flag": Scalar(True), "vec": Array([1.0, 2.0]),
                 "matrix": Array([Array([1, 2]), Array([3, 4])]), "zero_d": ItemOnly(), "score": Array([0.25])}
        self.assertEqual(text(value), '{"label":1,"f32":1.5,"flag":true,"vec":[1.0,2.0],"matrix":[[1,2],[3,4]],'
                                      '"zero_d":2.5,"score":[0.25]}')

    def test_numpy_like_values_nested_in_lists_and_tuples(self) -> None:
        self.assertEqual(text({"rows": [(Scalar(1), "a"), [Array([Scalar(2)])]]}), '{"rows":[[1,"a"],[[2]]]}')

    def test_tuple_is_a_list(self) -> None:
        self.assertEqual(text({"pair": (1, "two"), "nested": ((1, 2), ())}), '{"pair":[1,"two"],"nested":[[1,2],[]]}')

    def test_dates_and_times_are_iso_8601(self) -> None:
        value = {"d": date(2026, 11, 30), "dt": datetime(2026, 11, 30, 7, 5, 3, 120000),
                 "utc": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                 "east": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                 "t": time(23, 59, 1)}
        self.assertEqual(json.loads(text(value)), {
            "d": "2026-11-30", "dt": "2026-11-30T07:05:03.120000", "utc": "2026-01-02T03:04:05+00:00",
            "east": "2026-01-02T03:04:05+05:30", "t": "23:59:01"})

    def test_datetime64_like_values_are_their_iso_text(self) -> None:
        class Kind:
            kind = "M"

        class DateTime64:
            """Like np.datetime64: dtype.kind "M"; tolist() would give nanoseconds as an int."""
            dtype = Kind()

            def __init__(self, text: str) -> None:
                self.text = text

            def tolist(self) -> int:
                return 1796022303123456789

            def astype(self, kind: type) -> Scalar:
                assert kind is str
                return Scalar(self.text)
        self.assertEqual(text({"t": DateTime64("2026-11-30T07:05:03.123456789")}), '{"t":"2026-11-30T07:05:03.123456789"}')

    def test_decimal_is_a_number_with_exactly_its_digits(self) -> None:
        value = {"price": Decimal("1.10"), "big": Decimal("123456789012345678901234567890.000000000000000000001"),
                 "exp": Decimal("1E+400"), "neg": Decimal("-0.000"), "tiny": Decimal("2E-500")}
        written = text(value)
        self.assertEqual(written, '{"price":1.10,"big":123456789012345678901234567890.000000000000000000001,'
                                  '"exp":1E+400,"neg":-0.000,"tiny":2E-500}')
        # Valid JSON: a strict parser reads the digits back exactly.
        self.assertEqual(json.loads(written, parse_float=Decimal), value)

    def test_set_is_refused_as_unordered(self) -> None:
        for value in ({"tags": {"a", "b"}}, {"tags": frozenset([1])}):
            with self.subTest(value=value):
                with self.assertRaises(OutputEncodingError) as caught:
                    text(value)
                self.assertIn("output['tags']: a ", str(caught.exception))
                self.assertIn("has no order", str(caught.exception))
                self.assertIn("sorted(", str(caught.exception))

    def test_unknown_types_are_refused_by_name_and_place(self) -> None:
        for value, where, name in (({"a": [1, Opaque()]}, "output['a'][1]", "Opaque"),
                                   ({"b": b"bytes"}, "output['b']", "bytes"),
                                   ({"c": SelfConverting()}, "output['c']", "SelfConverting")):
            with self.subTest(name=name):
                with self.assertRaises(OutputEncodingError) as caught:
                    text(value)
                self.assertTrue(str(caught.exception).startswith(f"{where}: a {name} is not JSON"), str(caught.exception))

    def test_a_failing_conversion_is_reported(self) -> None:
        class Broken:
            def tolist(self) -> Any:
                raise RuntimeError("device memory")
        with self.assertRaisesRegex(OutputEncodingError, r"output\['x'\]: Broken.tolist\(\) failed: device memory"):
            text({"x": Broken()})

    def test_keys_convert_like_json_dumps(self) -> None:
        self.assertEqual(text({1: "a", 2.5: "b", False: "c", None: "d", Scalar(7): Scalar(8)}),
                         '{"1":"a","2.5":"b","false":"c","null":"d","7":8}')
        with self.assertRaisesRegex(OutputEncodingError, "a key must be a string or a number, not tuple"):
            text({(1, 2): Scalar(1)})

    def test_non_finite_numbers_are_refused_by_default(self) -> None:
        for bad in (math.nan, math.inf, -math.inf, Scalar(math.nan), Array([1.0, math.inf]), Decimal("NaN"),
                    Decimal("-Infinity")):
            with self.subTest(value=bad):
                with self.assertRaises(OutputEncodingError) as caught:
                    text({"score": bad})
                self.assertIn("is not valid JSON", str(caught.exception))
                self.assertIn("--nan-as-null", str(caught.exception))
                self.assertTrue(str(caught.exception).startswith("output['score']"), str(caught.exception))

    def test_non_finite_numbers_as_null_on_request(self) -> None:
        value = {"a": math.nan, "b": [1.5, -math.inf], "c": Scalar(math.inf), "d": Array([math.nan, 2.0]),
                 "e": Decimal("NaN"), "f": 0.5}
        self.assertEqual(text(value, nan_as_null=True), '{"a":null,"b":[1.5,null],"c":null,"d":[null,2.0],'
                                                        '"e":null,"f":0.5}')

    def test_str_subclasses_and_int_subclasses_stay_plain(self) -> None:
        class Label(str):
            pass

        class Count(int):
            def __repr__(self) -> str:
                return "not a number"
        self.assertEqual(text({"l": Label("x"), "c": Count(3), "s": Scalar(Label("y"))}), '{"l":"x","c":3,"s":"y"}')


class OutputTypesThroughServerTest(ServerTestCase):
    MODEL = '''
        import math
        from datetime import date
        from decimal import Decimal


        class Value:
            def __init__(self, v):
                self.v = v

            def item(self):
                return self.v

            def tolist(self):
                return self.v


        class Typed:
            def execute(self, msg):
                kind = msg["kind"]
                if kind == "numpy":
                    return {"label": Value(1), "f32": Value(1.5), "vec": Value([0.5, 2.0]), "flag": Value(True)}
                if kind == "mixed":
                    return {"when": date(2026, 11, 30), "pair": (1, 2), "price": Decimal("0.10")}
                if kind == "nan":
                    return {"score": math.nan, "ok": 1}
                if kind == "set":
                    return {"tags": {"a"}}
                return {"plain": kind}
    '''

    def serve(self, *args: str) -> Any:
        self.write_model("typed.py", self.MODEL)
        client = self.connect(self.start_server(args=list(args)))
        self.assertCode(client.request("addModel", {"ModelName": "t", "ModelFile": "typed.py"}), 0)
        return client

    def test_every_kind_through_execute_model_and_a_batch(self) -> None:
        client = self.serve()
        expected = {"numpy": {"label": 1, "f32": 1.5, "vec": [0.5, 2.0], "flag": True},
                    "mixed": {"when": "2026-11-30", "pair": [1, 2], "price": 0.10}}
        for kind, output in expected.items():
            reply = client.request("executeModel", {"ModelName": "t", "InputDictionary": {"kind": kind}})
            self.assertCode(reply, 0)
            self.assertEqual(reply["Result"], output)
        reply = client.request("executeModel", {"ModelName": "t", "InputDictionary": {"kind": "nan"}})
        self.assertCode(reply, -2, "BadModelOutput")
        self.assertIn("output['score']: nan is not valid JSON", reply["Error"]["Message"])
        reply = client.request("executeModel", {"ModelName": "t", "InputDictionary": {"kind": "set"}})
        self.assertCode(reply, -2, "BadModelOutput")
        self.assertIn("output['tags']: a set has no order", reply["Error"]["Message"])

        inputs = [{"kind": k} for k in ("plain", "numpy", "nan", "mixed", "set", "plain")]
        for lean in (False, True):
            with self.subTest(lean=lean):
                reply = client.request("executeBatch", {"ModelName": "t", "Inputs": inputs, "Lean": lean})
                self.assertCode(reply, 0)
                if lean:
                    self.assertEqual(reply["Result"], [{"plain": "plain"}, expected["numpy"], None, expected["mixed"],
                                                       None, {"plain": "plain"}])
                    self.assertEqual([(i, c, e["Type"]) for i, c, e in reply["Errors"]],
                                     [(2, -2, "BadModelOutput"), (4, -2, "BadModelOutput")])
                else:
                    self.assertEqual([item.get("Result") for item in reply["Result"]],
                                     [{"plain": "plain"}, expected["numpy"], None, expected["mixed"], None,
                                      {"plain": "plain"}])
                    self.assertEqual([item["Code"] for item in reply["Result"]], [0, 0, -2, 0, -2, 0])

    def test_decimal_digits_survive_on_the_wire(self) -> None:
        client = self.serve()
        req_id = client.send("executeModel", {"ModelName": "t", "InputDictionary": {"kind": "mixed"}})
        _, payload = client.read_frame()
        self.assertIn(b'"price":0.10}', payload, payload)
        self.assertEqual(json.loads(payload)["Id"], req_id)

    def test_nan_as_null(self) -> None:
        client = self.serve("--nan-as-null")
        reply = client.request("executeModel", {"ModelName": "t", "InputDictionary": {"kind": "nan"}})
        self.assertCode(reply, 0)
        self.assertEqual(reply["Result"], {"score": None, "ok": 1})
        reply = client.request("executeBatch", {"ModelName": "t", "Inputs": [{"kind": "nan"}, {"kind": "set"}],
                                                "Lean": True})
        self.assertEqual(reply["Result"], [{"score": None, "ok": 1}, None])
        self.assertEqual([(i, e["Type"]) for i, _, e in reply["Errors"]], [(1, "BadModelOutput")])


if __name__ == "__main__":
    unittest.main()
