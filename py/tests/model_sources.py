"""Source text of the small models the tests load (written into each test's temp python path)."""

AFFINE = '''
class Affine:
    """r = a * k + b, with k from the options (default 3)."""
    def __init__(self, options):
        self.k = options.get("k", 3)

    def execute(self, msg):
        return {"r": msg["a"] * self.k + msg["b"], "seq": msg.get("seq")}
'''

BEHAVIOURS = '''
import math
import os
import sys
import time

from pystage import Model


class Behaviours(Model):
    """Does what the message asks: the tests drive every outcome of execute through it."""
    def execute(self, msg):
        action = msg.get("do", "echo")
        if action == "echo":
            return {"echo": msg}
        if action == "none":
            return None
        if action == "raise":
            raise ValueError("asked to fail: " + str(msg.get("why", "")))
        if action == "list":
            return [1, 2, 3]
        if action == "set":
            return {"bad": {1, 2}}
        if action == "nan":
            return {"bad": math.nan}
        if action == "exit":
            sys.exit(3)
        if action == "interrupt":
            raise KeyboardInterrupt()
        if action == "big":
            return {"blob": "x" * msg["size"]}
        if action == "print":
            print("printed by a model", msg.get("n"))
            print("no newline yet", end="")
            print(" ... now", flush=True)
            sys.stderr.write("stderr line from a model\\n")
            os.write(1, b"raw fd 1 write from a model\\n")
            return {"printed": True}
        if action == "context":
            self.context.logger.info("context logger works", extra={"seq": msg.get("seq")})
            return {"uniq": self.context.uniq, "model": self.context.model_name,
                    "token": os.environ.get("PYSTAGE_TOKEN"), "module": __name__}
        if action == "sleep":
            time.sleep(msg["seconds"])
            return {"slept": msg["seconds"]}
        if action == "deep":
            value = {}
            for _ in range(msg["depth"]):
                value = {"a": value}
            return value
        raise KeyError(action)
'''

TAGGED = '''
class Tagged:
    def __init__(self, options):
        self.tag = options.get("tag", "{tag}")

    def execute(self, msg):
        return {{"tag": self.tag, "version": "{tag}", "module": __name__}}
'''

SYNTAX_ERROR = '''
class Broken:
    def execute(self, msg)
        return msg
'''

RAISES_ON_IMPORT = '''
raise RuntimeError("import-time failure")
'''

EXITS_ON_IMPORT = '''
import sys
sys.exit("exit at import")
'''

RAISES_IN_CONSTRUCTOR = '''
class Picky:
    def __init__(self, options):
        if "required" not in options:
            raise ValueError("option 'required' is missing")
        self.required = options["required"]

    def execute(self, msg):
        return {"required": self.required}
'''

TWO_CLASSES = '''
class First:
    def execute(self, msg):
        return {"which": "first"}


class Second:
    def execute(self, msg):
        return {"which": "second"}


class Helper:
    pass
'''

NO_MODEL_CLASS = '''
from collections import OrderedDict


class Helper:
    def run(self):
        pass
'''

NO_CONSTRUCTOR = '''
class Bare:
    def execute(self, msg):
        return {"bare": True}
'''

WITH_INIT = '''
import json


class Loaded:
    def __init__(self, options):
        self.data = None

    def init(self, data_path):
        with open(data_path) as handle:
            self.data = json.load(handle)

    def execute(self, msg):
        return {"data": self.data}
'''

INIT_RAISES = '''
class InitFails:
    def __init__(self, options):
        pass

    def init(self, data_path):
        raise OSError("cannot read " + data_path)

    def execute(self, msg):
        return {}
'''

SIDE_EFFECT = '''
import os

MARKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imported.marker")
with open(MARKER, "a") as handle:
    handle.write("imported\\n")


class SideEffect:
    def __init__(self, options):
        self.log = options["log"]

    def execute(self, msg):
        with open(self.log, "a") as handle:
            handle.write(str(msg.get("seq")) + "\\n")
        return {"logged": msg.get("seq")}
'''

SPAWNER = '''
import os
import subprocess


class Spawner:
    """Starts a helper process in its constructor, like a model launching a sidecar."""

    def __init__(self, options):
        self.child = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL)

    def execute(self, msg):
        return {"child": self.child.pid}
'''
