"""Files named in requests must stay inside the python path (models) or the spool dir / python path (data)."""
import json
import os
import shutil
import tempfile

from tests import model_sources as src
from tests.server_fixture import ServerTestCase


class PathConfinementTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        # A directory next to the python path, holding perfectly loadable files that must not be reachable.
        self.outside = tempfile.mkdtemp(prefix="pystage-test-outside-")
        self.addCleanup(shutil.rmtree, self.outside, True)
        with open(os.path.join(self.outside, "evil.py"), "w") as handle:
            handle.write(src.AFFINE)
        with open(os.path.join(self.outside, "data.json"), "w") as handle:
            json.dump({"a": 1, "b": 1}, handle)
        self.python_path = os.path.join(self.models, "root")
        os.makedirs(os.path.join(self.python_path, "sub"))
        self.spool = os.path.join(self.models, "spool")
        with open(os.path.join(self.python_path, "affine.py"), "w") as handle:
            handle.write(src.AFFINE)
        with open(os.path.join(self.python_path, "loaded.py"), "w") as handle:
            handle.write(src.WITH_INIT)
        os.symlink(os.path.join(self.outside, "evil.py"), os.path.join(self.python_path, "link_out.py"))
        os.symlink(os.path.join(self.outside, "data.json"), os.path.join(self.python_path, "data_out.json"))
        os.symlink(self.outside, os.path.join(self.python_path, "dir_out"))
        os.symlink(os.path.join(self.python_path, "affine.py"), os.path.join(self.python_path, "sub", "link_in.py"))
        self.server = self.start_server(python_path=self.python_path, args=["--spool-dir", self.spool])
        self.client = self.connect(self.server)

    def relative_to_root(self, path: str) -> str:
        return os.path.relpath(path, self.python_path)

    def test_model_file_escapes(self) -> None:
        escapes = [
            "../" + os.path.relpath(os.path.join(self.outside, "evil.py"), self.models),
            self.relative_to_root(os.path.join(self.outside, "evil.py")),
            os.path.join(self.outside, "evil.py"),
            "link_out.py",
            "dir_out/evil.py",
            "sub/../../root/../" + self.relative_to_root(os.path.join(self.outside, "evil.py")),
            "/etc/passwd",
            "",
        ]
        for index, path in enumerate(escapes):
            with self.subTest(path=path):
                reply = self.client.request("addModel", {"ModelName": f"m{index}", "ModelFile": path})
                self.assertCode(reply, -1, "PathError")
        self.assertEqual(self.client.request("serverStatus")["Result"]["Models"], [])

    def test_paths_that_stay_inside_are_fine(self) -> None:
        inside = ["affine.py", os.path.join(self.python_path, "affine.py"), "sub/../affine.py", "sub/link_in.py"]
        for index, path in enumerate(inside):
            with self.subTest(path=path):
                self.assertCode(self.client.request("addModel", {"ModelName": f"m{index}", "ModelFile": path}), 0)

    def test_input_file_escapes(self) -> None:
        self.assertCode(self.client.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        for path in (os.path.join(self.outside, "data.json"), "data_out.json", "../spool/../../" +
                     os.path.relpath(os.path.join(self.outside, "data.json"), os.path.dirname(self.models))):
            with self.subTest(path=path):
                reply = self.client.request("executeModel", {"ModelName": "aff", "InputFile": path})
                self.assertCode(reply, -1, "PathError")
        # Inside the spool dir and inside the python path are both accepted.
        for directory in (self.spool, self.python_path):
            path = os.path.join(directory, "in.json")
            with open(path, "w") as handle:
                json.dump({"a": 2, "b": 0}, handle)
            reply = self.client.request("executeModel", {"ModelName": "aff", "InputFile": path})
            self.assertEqual(reply["Result"]["r"], 6)

    def test_data_file_escapes(self) -> None:
        self.assertCode(self.client.request("addModel", {"ModelName": "l", "ModelFile": "loaded.py"}), 0)
        for path in (os.path.join(self.outside, "data.json"), "data_out.json", "dir_out/data.json",
                     "../" + os.path.relpath(os.path.join(self.outside, "data.json"), self.models)):
            with self.subTest(path=path):
                reply = self.client.request("initModel", {"ModelName": "l", "DataFile": path})
                self.assertCode(reply, -1, "PathError")
        self.assertEqual(self.client.request("executeModel", {"ModelName": "l", "InputDictionary": {}})["Result"],
                         {"data": None}, "init never ran")


class SeveralRootsTest(ServerTestCase):
    """Several --python-path entries and --allow-root folders: files in any of them load, nothing else does."""

    def setUp(self) -> None:
        super().setUp()
        self.dirs = {}
        for name in ("first", "second", "extra", "outside"):
            self.dirs[name] = os.path.join(self.models, name)
            os.makedirs(self.dirs[name])
        with open(os.path.join(self.dirs["second"], "helper_two.py"), "w") as handle:
            handle.write("FACTOR = 3\n")
        with open(os.path.join(self.dirs["second"], "uses_helper.py"), "w") as handle:
            handle.write("import helper_two\n\nclass M:\n    def __init__(self, options):\n        pass\n\n"
                         "    def execute(self, msg):\n        return {\"r\": msg[\"a\"] * helper_two.FACTOR}\n")
        for name in ("extra", "outside"):
            with open(os.path.join(self.dirs[name], "loaded.py"), "w") as handle:
                handle.write(src.WITH_INIT)
            with open(os.path.join(self.dirs[name], "data.json"), "w") as handle:
                json.dump({"a": 1, "b": 1}, handle)
        self.server = self.start_server(python_path=self.dirs["first"], args=[
            "--python-path", self.dirs["second"], "--allow-root", self.dirs["extra"]])
        self.client = self.connect(self.server)

    def test_models_and_data_in_every_root(self) -> None:
        second = os.path.join(self.dirs["second"], "uses_helper.py")
        self.assertCode(self.client.request("addModel", {"ModelName": "two", "ModelFile": second}), 0)
        reply = self.client.request("executeModel", {"ModelName": "two", "InputDictionary": {"a": 2}})
        self.assertEqual(reply["Result"], {"r": 6}, "a second python path entry is on sys.path")
        extra = os.path.join(self.dirs["extra"], "loaded.py")
        self.assertCode(self.client.request("addModel", {"ModelName": "x", "ModelFile": extra}), 0)
        data = os.path.join(self.dirs["extra"], "data.json")
        self.assertCode(self.client.request("initModel", {"ModelName": "x", "DataFile": data}), 0)

    def test_outside_every_root_is_refused_with_a_hint(self) -> None:
        outside = os.path.join(self.dirs["outside"], "loaded.py")
        reply = self.client.request("addModel", {"ModelName": "o", "ModelFile": outside})
        self.assertCode(reply, -1, "PathError")
        self.assertIn("python path", reply["Error"]["Message"])
        extra = os.path.join(self.dirs["extra"], "loaded.py")
        self.assertCode(self.client.request("addModel", {"ModelName": "x", "ModelFile": extra}), 0)
        data = os.path.join(self.dirs["outside"], "data.json")
        self.assertCode(self.client.request("initModel", {"ModelName": "x", "DataFile": data}), -1, "PathError")
