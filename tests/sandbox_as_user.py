"""Run by tests/test_execution.py as an unprivileged user (setpriv, the system's python3): hostile programs through
run_program without root, where the sandbox uses a user namespace. Loads execution.py by path (it needs only the
standard library and confinement.py beside it). argv: the victim file (owned by this user), a marker for the
escaping child. Prints one JSON object."""
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

here = Path(__file__).resolve().parents[1] / "src" / "infscale" / "evaluation" / "execution.py"
spec = importlib.util.spec_from_file_location("sandbox_execution", here)
execution = importlib.util.module_from_spec(spec)
sys.modules["sandbox_execution"] = execution
spec.loader.exec_module(execution)
victim, marker = sys.argv[1], sys.argv[2]

PROGRAMS = {
    "right": ("def f(x):\n    return x + 1", ["assert f(1) == 2"]),
    "wrong": ("def f(x):\n    return x", ["assert f(1) == 2"]),
    "own_file": (f"import os\nfor attempt in (lambda: open({victim!r}, 'w').write('gone'), lambda: os.remove({victim!r}),"
                 f" lambda: os.chmod({victim!r}, 0o777)):\n    try:\n        attempt()\n    except OSError as e:\n"
                 "        print(type(e).__name__, e.errno, flush=True)", ["assert True"]),
    "fork_bomb": ("import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.write(1, b'forked\\n')"
                  "\n    except OSError:\n        time.sleep(0.001)", ["assert True"]),
    "socket": ("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)", ["assert True"]),
    "escape": (f"import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
               f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n    os._exit(0)\nos.wait()", ["assert True"]),
    "kill_all": ("import os, signal\nfor t in (-1, 0, 1):\n    try:\n        os.kill(t, signal.SIGKILL)\n"
                 "    except OSError:\n        pass", ["assert True"]),
    "remount": ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "assert libc.mount(None, b'/', None, 32 | 4096, None) != 0", ["assert True"]),
}
out = {"namespaces": execution.namespaces_available()[0]}
for name, (program, tests) in PROGRAMS.items():
    timeout = 1.5 if name == "fork_bomb" else 4.0
    result = execution.run_program(program, tests, timeout)
    out[name] = dataclasses.asdict(result)
print(json.dumps(out))
