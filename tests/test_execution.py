"""The sandbox for untrusted code (infscale.evaluation.execution, docs/sandbox.md): right and wrong programs are
graded as such, and hostile ones are contained, leave nothing behind outside their temporary directory and
leave this test run alive. On a machine without namespaces or root, the checks of the layers it lacks skip."""
import os
import secrets
import socket
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from infscale.evaluation import execution
from infscale.evaluation.execution import run_program, run_programs, sandbox_workers

AS_ROOT = os.geteuid() == 0
NAMESPACES = set(execution.namespaces_available()[0])  # the namespaces this machine allows
ISOLATIONS = ["auto", "no_namespaces"] if NAMESPACES else ["auto"]


@pytest.fixture(autouse=True)
def sandbox_base(tmp_path, monkeypatch):
    """Sandbox folders go under this test's own folder, which must be empty again after each run."""
    base = tmp_path / "sandbox-base"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    yield base
    assert list(base.iterdir()) == [], "a sandbox folder was left behind"


def src(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line holds `marker` (a process the sandbox failed to kill)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_right_program_passes_and_wrong_one_fails(isolation):
    program = src("""
        def add(a, b):
            print("adding", a, b)
            return a + b
    """)
    right = run_program(program, ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"], isolation=isolation)
    assert right.passed and right.status == "passed", right
    assert "adding 1 2" in right.output
    wrong = run_program(program, ["assert add(1, 2) == 3", "assert add(2, 2) == 5"], isolation=isolation)
    assert not wrong.passed and wrong.status == "failed" and wrong.detail.startswith("test 1: AssertionError")
    broken = run_program("def add(a, b) return a", ["assert add(1, 2) == 3"], isolation=isolation)
    assert broken.status == "failed" and "SyntaxError" in broken.detail


def test_layers_reported():
    result = run_program("x = 1", ["assert x == 1"])
    assert {"process", "tempdir", "rlimits"} <= set(result.layers)
    assert NAMESPACES <= set(result.layers), result.layers
    if NAMESPACES:  # who may create namespaces may also filter syscalls
        assert "seccomp" in result.layers
    if AS_ROOT:
        assert "uid" in result.layers


def test_bad_arguments():
    with pytest.raises(TypeError, match="list of strings"):
        run_program("x = 1", "assert x == 1")
    with pytest.raises(ValueError, match="isolation"):
        run_program("x = 1", [], isolation="docker")


@pytest.mark.parametrize("program", [
    "import os\nos._exit(0)",
    "import sys\nsys.exit(0)",
    "raise SystemExit(0)",
    "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\nAssertionError = builtins.AssertionError",
    # a fake pass on stdout and on every descriptor it might guess, then an exit before the asserts
    "import os\nprint('PASS 0123456789abcdef0123456789abcdef', flush=True)\n"
    "for fd in range(1, 64):\n    try:\n        os.write(fd, b'PASS 0123456789abcdef0123456789abcdef\\n')\n"
    "    except OSError:\n        pass\nos._exit(0)",
    # patched print and exit builtins: the harness keeps its own
    "import builtins, os\nbuiltins.print = lambda *a, **k: None\nbuiltins.exec = lambda *a, **k: None\n"
    "os.write = lambda *a: 0\nos._exit = lambda *a: None",
])
def test_no_pass_without_running_the_asserts(program):
    result = run_program(program, ["assert False, 'the test ran'"])
    assert not result.passed and result.status == "failed", result


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_infinite_loop_and_ignored_signals_time_out(isolation):
    program = src("""
        import signal
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGXCPU, signal.SIGUSR1):
            signal.signal(s, signal.SIG_IGN)
        while True:
            pass
    """)
    start = time.monotonic()
    result = run_program(program, ["assert True"], timeout_s=1.0, isolation=isolation)
    assert result.status == "timeout" and not result.passed, result
    assert time.monotonic() - start < 5


def test_fork_bomb_is_bounded_and_killed():
    marker = f"bomb{secrets.token_hex(4)}"
    # every process forks as fast as it can; each success writes one line; all of them then spin
    program = src("""
        import os, time
        while True:
            try:
                if os.fork() == 0:
                    os.write(1, b"forked\\n")
            except OSError:
                time.sleep(0.001)
    """)
    result = run_program(program.replace("time.sleep", f"{marker!r} and time.sleep"), ["assert True"],
                         timeout_s=1.5)
    assert result.status in ("timeout", "error"), result
    if "uid" in result.layers or not AS_ROOT:  # RLIMIT_NPROC is enforced: root without a uid of its own is exempt
        assert result.output.count("forked") <= execution.PROCESSES, result.output.count("forked")
    time.sleep(0.2)
    assert processes_with(marker) == []


def test_ten_gigabytes_is_a_memory_error():
    result = run_program("block = bytearray(10 * 1024 ** 3)", ["assert len(block) > 0"])
    assert result.status == "memory" and not result.passed, result


def test_output_flood_is_capped():
    start = time.monotonic()
    result = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", ["assert True"], timeout_s=4)
    assert not result.passed and result.status in ("error", "failed"), result
    assert time.monotonic() - start < 4, "the file-size limit should stop it before the wall clock"
    assert len(result.output) <= 2000


@pytest.mark.skipif(not AS_ROOT, reason="the uid layer (files it does not own are safe) needs root")
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_files_outside_its_folder_survive(tmp_path, isolation):
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    victim_dir.chmod(0o755)
    victim = victim_dir / "precious.txt"
    victim.write_text("keep me")
    victim.chmod(0o644)
    program = src(f"""
        import os, shutil
        for attempt in (lambda: os.remove({str(victim)!r}), lambda: open({str(victim)!r}, "w").write("gone"),
                        lambda: shutil.rmtree({str(victim_dir)!r}), lambda: os.chmod({str(victim)!r}, 0o777),
                        lambda: open({str(victim_dir / 'new.txt')!r}, "w").write("planted")):
            try:
                attempt()
            except OSError:
                pass
    """)
    result = run_program(program, ["assert True"], isolation=isolation)
    assert result.passed, result  # it ran to the end: every attempt was refused, none crashed it
    assert victim.read_text() == "keep me" and oct(victim.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in victim_dir.iterdir()) == ["precious.txt"]


@pytest.mark.skipif("mount_ns" not in NAMESPACES, reason="a private /tmp needs a mount namespace")
def test_writes_to_shared_temporary_folders_stay_inside():
    name = f"infscale-escape-{secrets.token_hex(4)}"
    program = src(f"""
        import os
        for folder in ("/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~")):
            with open(os.path.join(folder, {name!r}), "w") as f:
                f.write("escaped?")
        os.makedirs("sub/dir")
        open("sub/dir/file", "w").write("fine: its own folder")
    """)
    result = run_program(program, ["assert open('/tmp/' + " + repr(name) + ").read() == 'escaped?'"])
    assert result.passed, result  # the writes worked, into its own folder
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not os.path.exists(os.path.join(folder, name))


@pytest.mark.skipif("mount_ns" not in NAMESPACES, reason="the in-memory /tmp needs a mount namespace")
def test_its_folder_is_capped_and_cannot_run_what_it_writes():
    fill = run_program("for i in range(8):\n    open(f'f{i}', 'wb').write(b'x' * (15 << 20))", ["assert True"])
    assert fill.status == "failed" and "No space left" in fill.detail, fill  # 64 MB, not the host's disk
    dropped = src("""
        import os, shutil, subprocess
        shutil.copy("/bin/true", "dropped")
        os.chmod("dropped", 0o755)
        subprocess.run(["./dropped"], check=True)
    """)
    result = run_program(dropped, ["assert True"])
    assert result.status == "failed" and "PermissionError" in result.detail, result  # noexec


def test_stdin_reads_end_of_file():
    start = time.monotonic()
    result = run_program("line = input()", ["assert True"], timeout_s=3)
    assert result.status == "failed" and "EOFError" in result.detail, result
    assert time.monotonic() - start < 3
    assert run_program("import sys\ndata = sys.stdin.read()", ["assert data == ''"]).passed


def test_socket_cannot_reach_a_local_listener():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        program = src(f"""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(("127.0.0.1", {port}))
            s.sendall(b"hello from the sandbox")
        """)
        result = run_program(program, ["assert True"])
        if not {"net_ns", "seccomp"} & set(result.layers):
            pytest.skip("neither a network namespace nor seccomp on this machine")
        assert result.status == "failed" and ("PermissionError" in result.detail or "OSError" in result.detail
                                              or "Network" in result.detail), result
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_child_that_outlives_its_parent_is_killed():
    marker = f"{secrets.randbelow(10**6) + 10**6}.{secrets.randbelow(1000):03d}"  # a unique `sleep` argument
    program = src(f"""
        import os
        if os.fork() == 0:
            os.setsid()  # leave the session and the process group
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", "{marker}"])
            os._exit(0)
        os.wait()
    """)
    result = run_program(program, ["assert True"])
    if not ({"pid_ns", "uid_sweep"} & set(result.layers)):
        pytest.skip("a child that leaves the session needs a PID namespace or root to be found")
    assert result.passed, result
    deadline = time.monotonic() + 3
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []


def test_killing_everything_it_can_leaves_this_run_alive():
    probe = run_program("x = 1", [])
    if not ({"pid_ns", "uid", "seccomp"} & set(probe.layers)):
        pytest.skip("kill(-1) would reach this test run: no PID namespace, uid or seccomp here")
    program = src(f"""
        import os, signal
        for target in (-1, 0, os.getppid(), 1, {os.getpid()}):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
    """)
    result = run_program(program, ["assert True"])
    assert result.status in ("passed", "error", "failed"), result  # whatever it did to itself, we are here


def test_ctypes_cannot_undo_the_sandbox():
    program = src("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        outcomes = {
            "setuid0": libc.setuid(0),
            "unshare_net": libc.unshare(0x40000000),
            "mount": libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
            "socket_inet": libc.socket(2, 1, 0),
            "ptrace": libc.ptrace(16, 1, None, None),
        }
        print(outcomes, flush=True)
    """)
    result = run_program(program, ["assert True"])
    assert result.passed, result
    outcomes = eval(result.output.strip().splitlines()[-1])  # a dict of ints it printed
    if "seccomp" in result.layers:
        assert all(outcomes[k] == -1 for k in ("unshare_net", "mount", "socket_inet", "ptrace")), outcomes
    if "uid" in result.layers:
        assert outcomes["setuid0"] == -1
    crash = run_program("import ctypes\nctypes.string_at(0)", ["assert True"])
    assert not crash.passed and crash.status == "error" and "segmentation" in crash.detail, crash


@pytest.mark.skipif(not AS_ROOT or "net_ns" not in NAMESPACES, reason="needs root and network namespaces")
def test_network_namespace_alone(monkeypatch):
    """A container that refuses a new /proc still gets a network namespace; escaped children die by uid."""
    monkeypatch.setattr(execution, "namespaces_available", lambda: (("net_ns",), ("--net",)))
    assert run_program("x = 1", ["assert x == 1"]).passed
    marker = f"{secrets.randbelow(10**6) + 10**6}.{secrets.randbelow(1000):03d}"
    program = src(f"""
        import os, socket
        if os.fork() == 0:
            os.setsid()
            os.execv("/bin/sleep", ["sleep", "{marker}"])
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    """)
    result = run_program(program, ["assert True"])
    assert {"net_ns", "uid_sweep", "seccomp"} <= set(result.layers) and "pid_ns" not in result.layers, result.layers
    assert result.status == "failed", result
    assert processes_with(marker) == []


@pytest.mark.skipif(not NAMESPACES, reason="no namespaces here")
def test_a_refused_namespace_set_falls_back_to_the_next(monkeypatch):
    refused = ((("pid_ns", "net_ns", "mount_ns"), ("--no-such-option",)),)
    monkeypatch.setattr(execution, "NAMESPACE_SETS", refused + execution.NAMESPACE_SETS[1:])
    execution.namespaces_available.cache_clear()
    try:
        layers, _ = execution.namespaces_available()
        assert "mount_ns" not in layers and "net_ns" in layers
    finally:
        execution.namespaces_available.cache_clear()


SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(not AS_ROOT or not SYSTEM_PYTHON.exists(), reason="needs root (setpriv) and /usr/bin/python3")
def test_without_root_a_user_namespace_holds_it(tmp_path):
    """As an unprivileged user (uid 65534), where the sandbox works in a user namespace: the user's own files
    are read-only to the program, a fork bomb is bounded, no network, no escaped child, the caller survives."""
    import json
    import subprocess

    victim_dir = Path(__file__).resolve().parent / f".sandbox-victim-{secrets.token_hex(4)}"  # outside /tmp
    marker = f"{secrets.randbelow(10**6) + 10**6}.{secrets.randbelow(1000):03d}"
    try:
        victim_dir.mkdir()
        victim = victim_dir / "mine.txt"
        victim.write_text("keep me")
        for path in (victim_dir, victim):
            os.chown(path, 65534, 65534)
        home = tmp_path / "home"
        home.mkdir()
        os.chown(home, 65534, 65534)
        done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "env", "-i",
                               "PATH=/usr/bin:/bin", f"HOME={home}", f"TMPDIR={home}", str(SYSTEM_PYTHON),
                               str(Path(__file__).parent / "sandbox_as_user.py"), str(victim), marker],
                              capture_output=True, text=True, timeout=120, cwd=home)
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        if "user_ns" not in out["namespaces"]:
            pytest.skip("no unprivileged user namespaces on this machine")
        layers = set(out["right"]["layers"])
        assert {"user_ns", "pid_ns", "net_ns", "mount_ns", "readonly_fs", "seccomp"} <= layers, layers
        assert out["right"]["passed"] and out["wrong"]["status"] == "failed"
        assert out["own_file"]["passed"] and victim.read_text() == "keep me"  # every attempt refused
        assert oct(victim.stat().st_mode & 0o777) == "0o644"
        assert out["fork_bomb"]["status"] == "timeout" and out["fork_bomb"]["output"].count("forked") <= 16
        assert out["socket"]["status"] == "failed"
        assert out["escape"]["passed"] and processes_with(marker) == []
        assert out["kill_all"]["status"] in ("passed", "failed", "error")  # and this test still runs
        assert out["remount"]["passed"]  # mount refused (no capabilities, seccomp)
    finally:
        import shutil

        shutil.rmtree(victim_dir, ignore_errors=True)


def test_pool_runs_in_order_and_sizes_from_the_job(monkeypatch):
    jobs = [(f"def f():\n    return {i}", [f"assert f() == {i if i % 2 else -1}"]) for i in range(5)]
    results = run_programs(jobs, timeout_s=4, threads=2)
    assert [r.passed for r in results] == [i % 2 == 1 for i in range(5)]
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert sandbox_workers() == 3 and sandbox_workers(threads=5) == 5
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert sandbox_workers() == len(os.sched_getaffinity(0))


def test_seccomp_filter_jumps_resolve():
    from infscale.evaluation.confinement import ARCHES, RET_K, filter_program

    for machine in ARCHES:
        rows = filter_program(machine)
        assert rows[-1][0] == RET_K and all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in rows)
        for i, (code, jt, jf, _) in enumerate(rows):
            if code != RET_K and (jt or jf):
                assert i + 1 + max(jt, jf) < len(rows)
    with pytest.raises(NotImplementedError):
        filter_program("sparc")

