"""The sandbox: no network, time and memory limits, no writes outside its directory, process tree killed."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest

from winnow.evaluation.sandbox import SandboxLimits, run_python

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def test_ordinary_code_runs() -> None:
    r = run_python("print(sum(range(10)))")
    assert r.passed and r.stdout.strip() == "45"


def test_network_is_blocked() -> None:
    """A server listening on the host's loopback is out of reach from inside (own network namespace). The
    same code run outside the sandbox connects, so a sandbox that shared the host's network would fail here
    (a closed port would not tell the two apart: both refuse)."""
    code = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2); print('connected')"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        outside = subprocess.run([sys.executable, "-c", code, str(port)], capture_output=True, text=True, timeout=20)
        inside = run_python(f"import sys; sys.argv = ['x', '{port}']\n{code}")
    assert outside.stdout.strip() == "connected", outside.stderr
    assert not inside.passed and "connected" not in inside.stdout


def test_infinite_loop_is_killed_at_the_timeout() -> None:
    t0 = time.time()
    r = run_python("while True: pass", limits=SandboxLimits(timeout_s=1.5))
    assert r.timed_out and not r.passed and time.time() - t0 < 5


def test_fork_bomb_is_contained_and_nothing_survives() -> None:
    code = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(60)\n"
    t0 = time.time()
    r = run_python(code, limits=SandboxLimits(timeout_s=2, max_procs=16))
    assert not r.passed and time.time() - t0 < 6
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", "winnow-sandbox-"], capture_output=True, text=True).stdout.split()
    assert not left, f"sandbox processes survived: {left}"


def test_memory_limit() -> None:
    r = run_python("x = bytearray(1 << 31)", limits=SandboxLimits(memory_mb=256))
    assert not r.passed and "MemoryError" in r.stderr


def test_cannot_write_outside_its_directory(tmp_path) -> None:
    target = tmp_path / "escape.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('x')\n")
    assert not r.passed and not target.exists()
    assert run_python("open('inside.txt', 'w').write('x'); print(open('inside.txt').read())").stdout.strip() == "x"


def test_host_files_are_not_there(tmp_path) -> None:
    """A file in the home directory, a feature store and a project's ``.env`` do not exist inside (ENOENT, not
    EACCES: a read-only view of the whole host would show them and only file modes would stand in the way,
    which protect nothing when Winnow runs as the user who owns them). Only the system's directories are at /."""
    import uuid
    from pathlib import Path

    tag = uuid.uuid4().hex[:8]
    home_file = Path.home() / f".winnow-test-secret-{tag}"
    project = Path.cwd() / f".winnow-test-project-{tag}"
    store_file, env_file = project / "store" / "pool.lance" / "data.lance", project / ".env"
    store_file.parent.mkdir(parents=True)
    for f in (home_file, store_file, env_file):
        f.write_text("secret")
    os_ = __import__("os")
    os_.chmod(home_file, 0o644)  # readable by anyone on the host: only the sandbox's file system hides it
    try:
        probe = ("import errno, os\nfor p in {paths!r}:\n    try:\n        open(p).read(); print(p, 'READ')\n"
                 "    except OSError as e:\n        print(p, errno.errorcode[e.errno])\nprint(sorted(os.listdir('/')))\n")
        r = run_python(probe.format(paths=[str(home_file), str(store_file), str(env_file)]))
        assert r.passed, r.stderr
        lines = r.stdout.splitlines()
        assert [line.split()[-1] for line in lines[:3]] == ["ENOENT"] * 3, r.stdout
        assert set(eval(lines[3])) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "dev", "proc", "tmp"}
    finally:
        home_file.unlink()
        shutil.rmtree(project)


def test_no_preexec_fn(monkeypatch) -> None:
    """Limits and the uid drop are programs in the command line (setpriv, prlimit, bwrap), never a
    ``preexec_fn``, which is unsafe in the threaded Dask workers that run rewards."""
    seen = {}
    real = subprocess.Popen

    def spy(*args, **kwargs):
        seen.update(kwargs, cmd=args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    assert run_python("print(1)").passed
    assert seen.get("preexec_fn") is None and seen["start_new_session"]
    assert any(c.endswith("prlimit") for c in seen["cmd"]) and any(c.endswith("bwrap") for c in seen["cmd"])
