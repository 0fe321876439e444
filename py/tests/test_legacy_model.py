"""Recognising models written for the original Python server, and reading their tab-indented files."""
import logging
import unittest

from pystage import Model
from pystage.legacy_model import adapt_execute, expand_leading_tabs, is_legacy_class


class ModelInstance:
    def __init__(self, host, port, modelOptions, logger):  # noqa: N803 (the original server's names)
        self.partitionHash = modelOptions.get("PartitionHash", 0)


class ViaBase(ModelInstance):
    def execute(self, msg):
        return ""


class OwnConstructor:
    def __init__(self, host, port, model_options, logger):
        pass

    def execute(self, msg):
        return "{}"


class Ordinary(Model):
    def execute(self, msg):
        return msg


class OrdinaryWithDefaults:
    def __init__(self, options, a=1, b=2, c=3):
        pass

    def execute(self, msg):
        return msg


class NoConstructor:
    def execute(self, msg):
        return msg


class LegacyModelTest(unittest.TestCase):
    def test_recognised_by_base_class_or_four_argument_constructor(self) -> None:
        self.assertTrue(is_legacy_class(ViaBase))
        self.assertTrue(is_legacy_class(OwnConstructor))
        for cls in (Ordinary, OrdinaryWithDefaults, NoConstructor):
            self.assertFalse(is_legacy_class(cls), cls.__name__)

    def test_string_results(self) -> None:
        run = adapt_execute(lambda msg: msg["out"])
        self.assertEqual(run({"out": '{"a": 12345678901234567890}'}), {"a": 12345678901234567890})
        for blank in ("", "   ", "\n\t", None, b""):
            self.assertIsNone(run({"out": blank}))
        self.assertEqual(run({"out": {"already": "a dict"}}), {"already": "a dict"})
        with self.assertRaisesRegex(ValueError, "not JSON"):
            run({"out": "{oops"})
        self.assertEqual(run({"out": "[1, 2]"}), [1, 2])  # refused later as BadModelOutput, like any non-dict

    def test_leading_tabs_expand_to_multiples_of_eight(self) -> None:
        source = b"if x:\n\tif y:\n\t    z = '\t'\n        \tw = 1\n"
        self.assertEqual(expand_leading_tabs(source), b"if x:\n        if y:\n            z = '\t'\n                w = 1\n")
        compile(expand_leading_tabs(b"def f(x):\n    if x:\n\treturn 1\n        return 2\n"), "t", "exec")
        logging.getLogger(__name__).debug("tab expansion compiles")
