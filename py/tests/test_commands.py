"""Every command of protocol v1 and its error replies, against a live server."""
import json
import os
import stat

from typing import Any, Dict, Optional

from pystage.frame_encoder import encode_frame
from tests import model_sources as src
from tests.server_fixture import ServerTestCase, payload_of


class CommandsTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("behaviours.py", src.BEHAVIOURS)
        self.write_model("affine.py", src.AFFINE)
        self.spool = os.path.join(self.models, "spool")
        self.server = self.start_server(args=["--spool-dir", self.spool, "--inline-limit", "2000"])
        self.client = self.connect(self.server)

    def add(self, name: str, file: str, options: Any = None, class_name: Optional[str] = None) -> Dict[str, Any]:
        cmd = {"ModelName": name, "ModelFile": file}
        if class_name is not None:
            cmd["ClassName"] = class_name
        return self.client.request("addModel", cmd, options)

    def execute(self, name: str, msg: Any) -> Dict[str, Any]:
        return self.client.request("executeModel", {"ModelName": name, "InputDictionary": msg})

    # --- hello / serverStatus / unknown commands -----------------------------------------------------

    def test_hello_reports_uniq_pid_protocol_and_commands(self) -> None:
        reply = self.client.request("hello", {})
        self.assertCode(reply, 0)
        result = reply["Result"]
        self.assertEqual(result["Uniq"], f"test.{self.server.port}")
        self.assertEqual(result["Pid"], self.server.pid)
        self.assertEqual(result["ProtocolVersion"], 1)
        self.assertEqual(sorted(result["Commands"]), sorted([
            "hello", "addModel", "updateModel", "removeModel", "initModel",
            "executeModel", "executeBatch", "serverStatus", "stopServer", "restoreState"]))
        self.assertEqual(self.server.ready["uniq"], result["Uniq"])

    def test_server_status(self) -> None:
        self.assertCode(self.add("aff", "affine.py"), 0)
        self.execute("aff", {"a": 1, "b": 1})
        self.execute("aff", {"a": 1})  # KeyError
        reply = self.client.request("serverStatus")
        self.assertCode(reply, 0)
        status = reply["Result"]
        self.assertEqual(status["Uniq"], f"test.{self.server.port}")
        self.assertEqual(status["Pid"], self.server.pid)
        self.assertEqual(status["ProtocolVersion"], 1)
        self.assertRegex(status["Python"], r"^3\.\d+\.\d+")
        self.assertGreaterEqual(status["UptimeSeconds"], 0)
        self.assertEqual(status["Models"], [{
            "Name": "aff", "File": os.path.realpath(os.path.join(self.models, "affine.py")),
            "Class": "Affine", "Vectorised": False, "Executed": 2, "Errors": 1}])

    def test_missing_and_unknown_commands(self) -> None:
        client = self.client
        client.send_raw(_frame({"Id": 5, "CmdOptions": {}}))
        reply = client.read_reply()
        self.assertEqual((reply["Cmd"], reply["Id"]), (None, 5))
        self.assertCode(reply, -1, "MissingCommand")
        client.send_raw(_frame({"Cmd": "launchRockets", "Id": 6}))
        reply = client.read_reply()
        self.assertEqual((reply["Cmd"], reply["Id"]), ("launchRockets", 6))
        self.assertCode(reply, -1, "UnknownCommand")
        client.send_raw(_frame({"Cmd": ["hello"], "Id": 7}))
        reply = client.read_reply()
        self.assertEqual((reply["Cmd"], reply["Id"]), (None, 7))
        self.assertCode(reply, -1, "UnknownCommand")

    def test_bad_id_cmdver_and_options(self) -> None:
        client = self.client
        client.send_raw(_frame({"Cmd": "serverStatus", "Id": "seven"}))
        reply = client.read_reply()
        self.assertEqual((reply["Cmd"], reply["Id"]), ("serverStatus", None))
        self.assertCode(reply, -1, "BadId")
        client.send_raw(_frame({"Cmd": "serverStatus", "Id": True}))
        self.assertCode(client.read_reply(), -1, "BadId")
        client.send_raw(_frame({"Cmd": "serverStatus", "CmdVer": 2, "Id": 8}))
        reply = client.read_reply()
        self.assertEqual(reply["Id"], 8)
        self.assertCode(reply, -1, "BadCmdVer")
        client.send_raw(_frame({"Cmd": "serverStatus", "CmdVer": 1, "Id": 9, "CmdOptions": [1]}))
        self.assertCode(client.read_reply(), -1, "BadOption")
        # Id and CmdVer may be left out: the reply's Id is then null.
        client.send_raw(_frame({"Cmd": "serverStatus"}))
        reply = client.read_reply()
        self.assertEqual(reply["Id"], None)
        self.assertCode(reply, 0)

    # --- addModel ------------------------------------------------------------------------------------

    def test_add_model_and_its_errors(self) -> None:
        reply = self.add("aff", "affine.py", {"k": 10})
        self.assertCode(reply, 0)
        self.assertEqual(reply["Result"]["Class"], "Affine")
        self.assertEqual(self.execute("aff", {"a": 2, "b": 1})["Result"], {"r": 21, "seq": None})
        self.assertCode(self.add("aff", "affine.py"), -1, "ModelExists")
        self.assertCode(self.client.request("addModel", {"ModelFile": "affine.py"}), -1, "MissingOption")
        self.assertCode(self.client.request("addModel", {"ModelName": "x"}), -1, "MissingOption")
        self.assertCode(self.add("x", "nope.py"), -1, "ModelFileNotFound")
        self.assertCode(self.add("x", "affine.py", options=[1, 2]), -1, "BadOption")
        self.assertCode(self.add("x", "affine.py", class_name="Missing"), -1, "ClassNotFound")

    def test_class_selection(self) -> None:
        self.write_model("two.py", src.TWO_CLASSES)
        self.write_model("none.py", src.NO_MODEL_CLASS)
        self.write_model("bare.py", src.NO_CONSTRUCTOR)
        reply = self.add("two", "two.py")
        self.assertCode(reply, -1, "AmbiguousClass")
        self.assertIn("First", reply["Error"]["Message"])
        self.assertIn("Second", reply["Error"]["Message"])
        self.assertNotIn("Helper", reply["Error"]["Message"])
        self.assertCode(self.add("two", "two.py", class_name="Second"), 0)
        self.assertEqual(self.execute("two", {})["Result"], {"which": "second"})
        self.assertCode(self.add("helper", "two.py", class_name="Helper"), -1, "ClassNotFound")
        reply = self.add("none", "none.py")
        self.assertCode(reply, -1, "ClassNotFound")
        self.assertIn("Helper", reply["Error"]["Message"])  # names what it found, not OrderedDict
        self.assertNotIn("OrderedDict", reply["Error"]["Message"])
        self.assertCode(self.add("bare", "bare.py"), 0)  # no __init__: constructed without options
        self.assertEqual(self.execute("bare", {})["Result"], {"bare": True})

    def test_a_mistyped_class_lists_the_classes_found_and_the_nearest(self) -> None:
        self.write_model("two.py", src.TWO_CLASSES)
        reply = self.add("two", "two.py", class_name="Secnod")
        self.assertCode(reply, -1, "ClassNotFound")
        message = reply["Error"]["Message"]
        self.assertIn("classes with an execute or execute_batch method: First, Second", message)
        self.assertTrue(message.endswith("did you mean 'Second'?"), message)

    def test_refused_loads_and_failed_messages_are_no_warnings(self) -> None:
        # The caller turns both into its own error (ModelLoadError, an error record): the server's log
        # must not say them again at warning, once per partition or once per batch.
        self.assertCode(self.add("x", "nope.py"), -1, "ModelFileNotFound")
        self.assertCode(self.add("aff", "affine.py"), 0)
        reply = self.client.request("executeBatch", {"ModelName": "aff", "Inputs": [{"a": 1, "b": 2}, {"a": 1}]})
        self.assertCode(reply, 0)
        self.assertCode(self.execute("aff", {"a": 1}), -2, "KeyError")
        self.server.wait_for_log(lambda r: r.get("msg") == "request refused" and r.get("cmd") == "addModel")
        self.server.wait_for_log(lambda r: r.get("msg") == "batch items failed")
        self.server.wait_for_log(lambda r: r.get("msg") == "model failed")
        loud = [r for r in self.server.logs() if r.get("level") in ("warning", "error", "critical")]
        self.assertEqual(loud, [])

    def test_model_code_failing_at_load(self) -> None:
        self.write_model("syntax.py", src.SYNTAX_ERROR)
        self.write_model("import_fails.py", src.RAISES_ON_IMPORT)
        self.write_model("picky.py", src.RAISES_IN_CONSTRUCTOR)
        self.assertCode(self.add("s", "syntax.py"), -2, "SyntaxError")
        reply = self.add("i", "import_fails.py")
        self.assertCode(reply, -2, "RuntimeError")
        self.assertEqual(reply["Error"]["Message"], "import-time failure")
        self.assertIn("import_fails.py", reply["Error"]["Traceback"])
        # sys.exit() at import fails the addModel like any other exception; the server keeps serving.
        self.write_model("exits.py", src.EXITS_ON_IMPORT)
        reply = self.add("e", "exits.py")
        self.assertCode(reply, -2, "SystemExit")
        self.assertEqual(reply["Error"]["Message"], "exit at import")
        reply = self.add("p", "picky.py")
        self.assertCode(reply, -2, "ValueError")
        self.assertEqual(reply["Error"]["Message"], "option 'required' is missing")
        self.assertIn("picky.py", reply["Error"]["Traceback"])
        # None of them got registered; the same names are free for a good model.
        self.assertCode(self.add("p", "picky.py", {"required": 1}), 0)
        self.assertEqual(self.client.request("serverStatus")["Result"]["Models"][0]["Name"], "p")

    def test_same_base_name_in_two_directories(self) -> None:
        self.write_model("one/tagged.py", src.TAGGED.format(tag="one"))
        self.write_model("two/tagged.py", src.TAGGED.format(tag="two"))
        self.assertCode(self.add("a", "one/tagged.py"), 0)
        self.assertCode(self.add("b", "two/tagged.py"), 0)
        first, second = self.execute("a", {})["Result"], self.execute("b", {})["Result"]
        self.assertEqual((first["version"], second["version"]), ("one", "two"))
        self.assertNotEqual(first["module"], second["module"])

    # --- updateModel / removeModel -------------------------------------------------------------------

    def test_update_model_swaps_only_on_success(self) -> None:
        self.write_model("tagged.py", src.TAGGED.format(tag="v1"))
        self.assertCode(self.add("t", "tagged.py"), 0)
        self.assertEqual(self.execute("t", {})["Result"]["version"], "v1")
        for broken, error_type in ((src.SYNTAX_ERROR, "SyntaxError"),
                                   (src.RAISES_ON_IMPORT, "RuntimeError"),
                                   (src.RAISES_IN_CONSTRUCTOR, "ValueError"),
                                   (src.TWO_CLASSES, "AmbiguousClass")):
            self.write_model("tagged.py", broken)
            reply = self.client.request("updateModel", {"ModelName": "t", "ModelFile": "tagged.py"})
            self.assertCode(reply, -1 if error_type == "AmbiguousClass" else -2, error_type)
            self.assertEqual(self.execute("t", {})["Result"]["version"], "v1", f"after a failed update ({error_type})")
        self.write_model("tagged.py", src.TAGGED.format(tag="v2"))
        reply = self.client.request("updateModel", {"ModelName": "t", "ModelFile": "tagged.py"}, {"tag": "opt"})
        self.assertCode(reply, 0)
        self.assertEqual(self.execute("t", {})["Result"], {"tag": "opt", "version": "v2",
                                                          "module": self.execute("t", {})["Result"]["module"]})
        # Without ModelFile/ModelOptions, the file is re-read with the options it had.
        self.write_model("tagged.py", src.TAGGED.format(tag="v3"))
        self.assertCode(self.client.request("updateModel", {"ModelName": "t"}), 0)
        self.assertEqual(self.execute("t", {})["Result"]["version"], "v3")
        self.assertEqual(self.execute("t", {})["Result"]["tag"], "opt")

    def test_update_and_remove_unknown_models(self) -> None:
        self.assertCode(self.client.request("updateModel", {"ModelName": "ghost", "ModelFile": "affine.py"}),
                        -1, "UnknownModel")
        self.assertCode(self.client.request("removeModel", {"ModelName": "ghost"}), -1, "UnknownModel")
        self.assertCode(self.client.request("removeModel", {}), -1, "MissingOption")

    def test_remove_model(self) -> None:
        self.assertCode(self.add("aff", "affine.py"), 0)
        reply = self.client.request("removeModel", {"ModelName": "aff"})
        self.assertCode(reply, 0)
        self.assertCode(self.execute("aff", {"a": 1, "b": 1}), -1, "UnknownModel")
        self.assertEqual(self.client.request("serverStatus")["Result"]["Models"], [])
        self.assertCode(self.add("aff", "affine.py", {"k": 1}), 0)
        self.assertEqual(self.execute("aff", {"a": 1, "b": 1})["Result"]["r"], 2)

    # --- initModel -----------------------------------------------------------------------------------

    def test_init_model(self) -> None:
        self.write_model("loaded.py", src.WITH_INIT)
        self.write_model("init_fails.py", src.INIT_RAISES)
        self.assertCode(self.add("l", "loaded.py"), 0)
        self.assertCode(self.add("f", "init_fails.py"), 0)
        self.assertCode(self.add("aff", "affine.py"), 0)
        data_in_spool = os.path.join(self.spool, "weights.json")
        with open(data_in_spool, "w") as handle:
            json.dump({"w": [1, 2]}, handle)
        reply = self.client.request("initModel", {"ModelName": "l", "DataFile": data_in_spool})
        self.assertCode(reply, 0)
        self.assertEqual(self.execute("l", {})["Result"], {"data": {"w": [1, 2]}})
        # A relative DataFile resolves against the python path.
        with open(os.path.join(self.models, "data.json"), "w") as handle:
            json.dump({"w": 3}, handle)
        self.assertCode(self.client.request("initModel", {"ModelName": "l", "DataFile": "data.json"}), 0)
        self.assertEqual(self.execute("l", {})["Result"], {"data": {"w": 3}})
        reply = self.client.request("initModel", {"ModelName": "f", "DataFile": "data.json"})
        self.assertCode(reply, -2, "OSError")
        self.assertIn("cannot read", reply["Error"]["Message"])
        self.assertCode(self.client.request("initModel", {"ModelName": "aff", "DataFile": "data.json"}),
                        -1, "NoInitMethod")
        self.assertCode(self.client.request("initModel", {"ModelName": "l"}), -1, "MissingOption")
        self.assertCode(self.client.request("initModel", {"ModelName": "ghost", "DataFile": "data.json"}),
                        -1, "UnknownModel")

    # --- executeModel --------------------------------------------------------------------------------

    def test_execute_model_outcomes(self) -> None:
        self.assertCode(self.add("b", "behaviours.py"), 0)
        reply = self.execute("b", {"do": "echo", "x": "é"})
        self.assertCode(reply, 0)
        self.assertEqual(reply["Result"], {"echo": {"do": "echo", "x": "é"}})
        reply = self.execute("b", {"do": "none"})
        self.assertEqual((reply["Code"], reply["Result"]), (1, None))
        self.assertNotIn("Error", reply)
        reply = self.execute("b", {"do": "raise", "why": "because"})
        self.assertCode(reply, -2, "ValueError")
        self.assertEqual(reply["Error"]["Message"], "asked to fail: because")
        self.assertIn("behaviours.py", reply["Error"]["Traceback"])
        self.assertIn("behaviours.py", reply["Error"]["Traceback"].splitlines()[1])  # starts in the model
        for action in ("list", "set", "nan"):
            self.assertCode(self.execute("b", {"do": action}), -2, "BadModelOutput")
        self.assertCode(self.execute("b", {"do": "exit"}), -2, "SystemExit")
        self.assertCode(self.execute("b", {"do": "interrupt"}), -2, "KeyboardInterrupt")
        self.assertCode(self.execute("b", {"do": "echo"}), 0)  # still serving after all of that
        self.assertCode(self.execute("ghost", {}), -1, "UnknownModel")
        self.assertCode(self.execute("b", [1]), -1, "BadInput")
        self.assertCode(self.client.request("executeModel", {"ModelName": "b"}), -1, "MissingOption")
        status = self.client.request("serverStatus")["Result"]["Models"][0]
        self.assertEqual((status["Executed"], status["Errors"]), (9, 6))

    def test_model_context(self) -> None:
        self.assertCode(self.add("ctx", "behaviours.py"), 0)
        result = self.execute("ctx", {"do": "context", "seq": 4})["Result"]
        self.assertEqual(result["uniq"], f"test.{self.server.port}")
        self.assertEqual(result["model"], "ctx")
        self.assertIsNone(result["token"])

    def test_big_output_goes_to_a_spool_file(self) -> None:
        self.assertCode(self.add("b", "behaviours.py"), 0)
        reply = self.execute("b", {"do": "big", "size": 5000})
        self.assertCode(reply, 0)
        self.assertIsNone(reply["Result"])
        path = reply["OutputFile"]
        self.assertEqual(os.path.dirname(path), os.path.realpath(self.spool))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, encoding="utf-8") as handle:
            self.assertEqual(json.load(handle), {"blob": "x" * 5000})
        # Just under the limit stays inline.
        reply = self.execute("b", {"do": "big", "size": 1900})
        self.assertEqual(reply["Result"], {"blob": "x" * 1900})
        self.assertNotIn("OutputFile", reply)

    def test_input_file(self) -> None:
        self.assertCode(self.add("aff", "affine.py"), 0)
        path = os.path.join(self.spool, "in.json")
        with open(path, "w") as handle:
            json.dump({"a": 5, "b": 1, "seq": 1}, handle)
        reply = self.client.request("executeModel", {"ModelName": "aff", "InputFile": path})
        self.assertEqual(reply["Result"], {"r": 16, "seq": 1})
        self.assertTrue(os.path.exists(path), "the client owns the input file and deletes it")
        missing = os.path.join(self.spool, "missing.json")
        self.assertCode(self.client.request("executeModel", {"ModelName": "aff", "InputFile": missing}),
                        -1, "InputFileNotFound")
        for content in ("not json", "[1, 2]"):
            with open(path, "w") as handle:
                handle.write(content)
            self.assertCode(self.client.request("executeModel", {"ModelName": "aff", "InputFile": path}),
                            -1, "BadInput")

    # --- executeBatch --------------------------------------------------------------------------------

    def test_execute_batch_with_mixed_items(self) -> None:
        self.assertCode(self.add("b", "behaviours.py"), 0)
        inputs = [{"do": "echo", "n": 1}, {"do": "raise", "why": "2"}, {"do": "none"}, "not an object",
                  {"do": "list"}, {"do": "set"}, {"do": "big", "size": 3000}, {"do": "echo", "n": 8}]
        reply = self.client.request("executeBatch", {"ModelName": "b", "Inputs": inputs})
        self.assertCode(reply, 0)
        items = reply["Result"]
        self.assertEqual(len(items), len(inputs))
        self.assertEqual(items[0], {"Code": 0, "Result": {"echo": {"do": "echo", "n": 1}}})
        self.assertEqual((items[1]["Code"], items[1]["Error"]["Type"], items[1]["Error"]["Message"]),
                         (-2, "ValueError", "asked to fail: 2"))
        self.assertEqual(items[2], {"Code": 1, "Result": None})
        self.assertEqual((items[3]["Code"], items[3]["Error"]["Type"]), (-1, "BadInput"))
        self.assertEqual((items[4]["Code"], items[4]["Error"]["Type"]), (-2, "BadModelOutput"))
        self.assertEqual((items[5]["Code"], items[5]["Error"]["Type"]), (-2, "BadModelOutput"))
        self.assertEqual((items[6]["Code"], items[6]["Result"]), (0, None))
        with open(items[6]["OutputFile"], encoding="utf-8") as handle:
            self.assertEqual(json.load(handle), {"blob": "x" * 3000})
        self.assertEqual(items[7], {"Code": 0, "Result": {"echo": {"do": "echo", "n": 8}}})
        status = self.client.request("serverStatus")["Result"]["Models"][0]
        self.assertEqual((status["Executed"], status["Errors"]), (7, 3))

    def test_execute_batch_errors(self) -> None:
        self.assertCode(self.client.request("executeBatch", {"ModelName": "ghost", "Inputs": [{}]}),
                        -1, "UnknownModel")
        self.assertCode(self.add("aff", "affine.py"), 0)
        self.assertCode(self.client.request("executeBatch", {"ModelName": "aff"}), -1, "MissingOption")
        self.assertCode(self.client.request("executeBatch", {"ModelName": "aff", "Inputs": {}}), -1, "BadOption")
        reply = self.client.request("executeBatch", {"ModelName": "aff", "Inputs": []})
        self.assertEqual((reply["Code"], reply["Result"]), (0, []))

    def test_stop_server(self) -> None:
        reply = self.client.request("stopServer")
        self.assertCode(reply, 0)
        self.assertEqual(self.server.wait_exit(5), 0)
        self.assertTrue(os.path.isdir(self.spool), "a spool dir the server did not create is left alone")


def _frame(request: Dict[str, Any]) -> bytes:
    return encode_frame(payload_of(request))
