"""A container pool in a process of its own, for the test that kills it with SIGKILL (test_orphans.py).

    python -m tests.containerpool.platform_child ROOT INVOKER open|sandboxed
Starts the prewarms, runs a Python and a Node.js job and one that starts a process in a session of its own,
prints {"pids": [proxies], "stray": pid, "stray_uid": uid, "root": folder} as one line, then waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tests.containerpool.jobs import NODE, PY, job
from whisk.containerpool.pool import ContainerPool
from whisk.containers.process.factory import ProcessContainerFactory
from whisk.runtimes.manifest import load_manifest


STRAY = ("import os, subprocess\ndef main(a):\n"
         "    return {'pid': subprocess.Popen(['sleep', '1000'], start_new_session=True).pid, 'uid': os.getuid()}\n")


async def main(root: str, invoker: int, mode: str) -> None:
    manifest = load_manifest()
    factory = ProcessContainerFactory(manifest, root_dir=root, invoker_instance=invoker, sandbox=mode == "sandboxed")
    pool = ContainerPool(factory, manifest, invoker_instance=invoker, memory_mb=2048, pause_grace_s=0.0,
                         idle_timeout_s=600, prewarm=True)
    await pool.start()
    await pool.run(job(kind=PY, name="a"))
    await pool.run(job(kind=NODE, name="b"))
    # The pool refills its two prewarms in the background as the runs take them: wait for them (at most 30 s).
    for _ in range(3000):
        if len(factory.pids) >= 4:
            break
        await asyncio.sleep(0.01)
    pids = factory.pids
    result = await pool.run(job(STRAY, kind=PY, name="stray"))
    stray = result.response["result"]
    print(json.dumps({"pids": pids, "stray": stray["pid"], "stray_uid": stray["uid"], "root": factory.root}),
          flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
