"""What only the Node.js proxy does: Promises, CommonJS exports, zip actions, __OW_ALLOW_CONCURRENT."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import zipfile

import pytest

from tests.runtimes.harness import running_proxy, silenced_and_still_ended, zip_base64

KIND = "nodejs:20"
pytestmark = pytest.mark.usefixtures("node")


async def test_async_main_returning_a_promise() -> None:
    code = ("async function main(args) {\n"
            "  await new Promise(resolve => setImmediate(resolve));\n"
            "  return {doubled: args.n * 2};\n"
            "}\n")
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        assert await proxy.run({"n": 21}) == (200, {"doubled": 42})


async def test_main_returning_a_promise_explicitly() -> None:
    code = "function main(args) {\n  return new Promise(resolve => setTimeout(() => resolve({late: true}), 1));\n}\n"
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        assert await proxy.run() == (200, {"late": True})


async def test_rejected_promise_is_an_application_error() -> None:
    code = ("function main(args) {\n"
            "  return args.plain ? Promise.reject({reason: 'plain'}) : Promise.reject(new Error('nope'));\n"
            "}\n")
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        status, body = await proxy.run()
        assert status == 200
        assert body["error"]["name"] == "Error" and body["error"]["message"] == "nope" and "stack" in body["error"]
        assert await proxy.run({"plain": True}) == (200, {"error": {"reason": "plain"}})


async def test_a_rejection_is_recorded_as_openwhisks_serialize_error_writes_it() -> None:
    # OpenWhisk's runtime serializes a rejection with the serialize-error package: references back to an enclosing
    # object are "[Circular]", Buffers and streams are named, functions left out, nested errors kept whole, toJSON
    # honoured; a function is named.
    code = """
const {Readable} = require('stream');
function main(args) {
    if (args.kind === 'circular') { const o = {a: 1}; o.self = o; o.list = [o]; return Promise.reject(o); }
    if (args.kind === 'fields') {
        const e = new RangeError('outer');
        Object.assign(e, {code: 'E_X', data: Buffer.from('hi'), stream: new Readable(), skip: () => 1,
                          inner: new TypeError('inner'), when: new Date(0)});
        return Promise.reject(e);
    }
    if (args.kind === 'function') return Promise.reject(function named() {});
    return Promise.reject(0);
}
"""
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        assert await proxy.run({"kind": "circular"}) == \
            (200, {"error": {"a": 1, "self": "[Circular]", "list": ["[Circular]"]}})
        status, body = await proxy.run({"kind": "fields"})
        error = body["error"]
        assert status == 200 and list(error)[:5] == ["code", "data", "stream", "inner", "when"], error
        assert (error["code"], error["data"], error["stream"], error["when"]) == \
            ("E_X", "[object Buffer]", "[object Stream]", "1970-01-01T00:00:00.000Z")
        assert error["inner"]["name"] == "TypeError" and error["inner"]["message"] == "inner"
        assert (error["name"], error["message"]) == ("RangeError", "outer") and "skip" not in error
        assert await proxy.run({"kind": "function"}) == (200, {"error": "[Function: named]"})
        assert await proxy.run({"kind": "zero"}) == (200, {"error": {}})          # a false reason, as reject()


async def test_a_null_result_is_answered_as_null_without_a_log_line() -> None:
    # OpenWhisk's runtime answers 200 null (typeof null is "object"); the platform then refuses it.
    async with running_proxy(KIND) as proxy:
        await proxy.init("function main() { return null; }")
        assert await proxy.run() == (200, None)
        await proxy.until_sentinels(1)
        assert not [line for line in proxy.err if "XXX_THE_END" not in line]


async def test_undefined_result_is_an_empty_object() -> None:
    async with running_proxy(KIND) as proxy:
        await proxy.init("function main(args) {\n  return;\n}\n")
        assert await proxy.run() == (200, {})


@pytest.mark.parametrize("code", [
    "exports.main = args => ({form: 'exports'});",
    "module.exports.main = args => ({form: 'exports'});",
    "module.exports = {main: async args => ({form: 'exports'})};",
    "const main = function (args) { return {form: 'exports'}; };",
])
async def test_entry_point_forms(code: str) -> None:
    async with running_proxy(KIND) as proxy:
        assert await proxy.init(code) == (200, {"OK": True})
        assert await proxy.run() == (200, {"form": "exports"})


async def test_source_may_require_node_modules() -> None:
    code = "const path = require('path');\nfunction main(args) {\n  return {joined: path.join('a', 'b')};\n}\n"
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        assert await proxy.run() == (200, {"joined": "a/b"})


async def test_zip_action_with_package_json_main() -> None:
    archive = zip_base64({
        "package.json": json.dumps({"name": "action", "main": "lib/handler.js"}),
        "lib/handler.js": ("const {twice} = require('./util');\n"
                           "const fs = require('fs');\n"
                           "exports.main = args => ({value: twice(args.n),\n"
                           "                         data: fs.readFileSync('data.txt', 'utf8')});\n"),
        "lib/util.js": "exports.twice = n => 2 * n;\n",
        "data.txt": "from the zip",
    })
    async with running_proxy(KIND) as proxy:
        assert await proxy.init(archive, binary=True) == (200, {"OK": True})
        assert await proxy.run({"n": 21}) == (200, {"value": 42, "data": "from the zip"})


async def test_zip_action_with_index_js_and_module_entry_point() -> None:
    archive = zip_base64({
        "index.js": "exports.main = () => ({from: 'index'});\n",
        "other.js": "exports.handle = () => ({from: 'other'});\n",
    })
    async with running_proxy(KIND) as proxy:
        assert (await proxy.init(archive, binary=True))[0] == 200
        assert await proxy.run() == (200, {"from": "index"})
    async with running_proxy(KIND) as proxy:
        assert (await proxy.init(archive, main="other.handle", binary=True))[0] == 200
        assert await proxy.run() == (200, {"from": "other"})


async def test_a_zips_main_may_name_a_module_in_a_folder() -> None:
    # OpenWhisk splits a zip's main at its first dot: the module is any path ("lib/app"), the rest the property.
    archive = zip_base64({"index.js": "exports.main = () => ({from: 'index'});\n",
                          "lib/app.js": "exports.handlers = {other: () => ({from: 'lib/app'})};\n"})
    async with running_proxy(KIND) as proxy:
        assert (await proxy.init(archive, main="lib/app.handlers.other", binary=True))[0] == 200
        assert await proxy.run() == (200, {"from": "lib/app"})
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init(archive, main=".main", binary=True)
        assert status == 502 and "Name of main function is not valid." in body["error"]
    async with running_proxy(KIND) as proxy:         # a source action's main becomes code: names only
        status, body = await proxy.init("function main() { return {}; }", main="lib/app.main")
        assert status == 502 and "Name of main function is not valid." in body["error"]


async def test_stored_zip_entries_are_read_too() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("index.js", "exports.main = () => ({stored: true});\n")
    async with running_proxy(KIND) as proxy:
        assert (await proxy.init(base64.b64encode(buffer.getvalue()).decode(), binary=True))[0] == 200
        assert await proxy.run() == (200, {"stored": True})


async def test_zip_without_package_json_or_index_fails_init() -> None:
    archive = zip_base64({"action.js": "exports.main = () => ({});\n"})
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init(archive, binary=True)
        assert status == 502
        assert body["error"] == ("Initialization has failed due to: "
                                 "Zipped actions must contain either package.json or index.js at the root.")
        await proxy.until_sentinels(1)


@pytest.mark.parametrize("code, message", [
    ("function main(args) { return {a: 1 }\n", "SyntaxError: Unexpected end of input"),
    ("function main(args) {\n  return {a: 1};\n}\nfoo bar\n", "SyntaxError: Unexpected identifier 'bar'"),
])
async def test_a_syntax_error_in_source_code_fails_init_as_openwhisks_eval_reports_it(code: str, message: str) -> None:
    """OpenWhisk's runner evals the code: the reason starts with the error itself. node puts the offending line
    before a compile error's stack, which for code that ends early is the proxy's own wrapper: never shown."""
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init(code)
        assert status == 502
        assert body["error"].startswith(f"Initialization has failed due to: {message}\n    at "), body["error"]
        assert "ReferenceError" not in body["error"]
        await proxy.until_sentinels(1)


async def test_a_result_json_cannot_write_is_an_internal_error_as_openwhisks_endpoint_answers() -> None:
    """OpenWhisk's runtime writes the result with express's res.json after the activation ended; when that throws
    (a circular object, a BigInt) its endpoint answers 500 "Internal error."."""
    code = ("function main(args) {\n"
            "  if (args.kind === 'bigint') return {n: 10n};\n"
            "  const o = {}; o.self = o; return o;\n"
            "}\n")
    async with running_proxy(KIND) as proxy:
        await proxy.init(code)
        for kind in ("circular", "bigint"):
            assert await proxy.run({"kind": kind}) == (500, {"error": "Internal error."})
        await proxy.until_sentinels(2)
        assert sum("The result is not JSON: TypeError" in line for line in proxy.err) == 2
        assert await proxy.run({"kind": "circular"}) == (500, {"error": "Internal error."})   # still served


async def test_binary_that_is_not_a_zip_fails_init() -> None:
    async with running_proxy(KIND) as proxy:
        status, body = await proxy.init(base64.b64encode(b"not a zip at all").decode(), binary=True)
        assert status == 502 and "The file type is unsupported" in body["error"]


def _waiting_action() -> str:
    # Each activation says it started, then waits until the test creates its flag file.
    return ("const fs = require('fs');\n"
            "function main(args) {\n"
            "  console.log('started ' + args.id);\n"
            "  return new Promise(resolve => {\n"
            "    const timer = setInterval(() => {\n"
            "      if (fs.existsSync(args.flag)) { clearInterval(timer); resolve({done: args.id}); }\n"
            "    }, 2);\n"
            "  });\n"
            "}\n")


async def test_concurrent_runs_need_allow_concurrent(tmp_path) -> None:
    flag = str(tmp_path / "go")
    async with running_proxy(KIND) as proxy:
        await proxy.init(_waiting_action())
        first = asyncio.create_task(proxy.run({"id": 1, "flag": flag}))
        await proxy.until(lambda: "started 1" in proxy.out)
        assert await proxy.run({"id": 2, "flag": flag}) == (403, {"error": "System not ready, status is running."})
        open(flag, "w").close()
        assert await first == (200, {"done": 1})


async def test_allow_concurrent_runs_activations_side_by_side(tmp_path) -> None:
    flag = str(tmp_path / "go")
    async with running_proxy(KIND, env={"__OW_ALLOW_CONCURRENT": "true"}) as proxy:
        await proxy.init(_waiting_action())
        runs = [asyncio.create_task(proxy.run({"id": i, "flag": flag})) for i in range(3)]
        await proxy.until(lambda: all(f"started {i}" in proxy.out for i in range(3)))
        open(flag, "w").close()
        assert await asyncio.gather(*runs) == [(200, {"done": i}) for i in range(3)]


async def test_an_action_that_silences_its_output_still_ends_each_activation() -> None:
    """The sentinels went through process.stdout.write: an action that replaced it to silence itself lost them, and
    each of its activations waited 2 s for its logs, got "There was an issue while collecting your logs" and lost
    its container."""
    code = ("function main(args) {\n  console.log('heard');\n  if (args.silence) {\n"
            "    process.stdout.write = process.stderr.write = () => true;\n  }\n  console.log('unheard');\n"
            "  return {};\n}\n")
    await silenced_and_still_ended(KIND, code)
