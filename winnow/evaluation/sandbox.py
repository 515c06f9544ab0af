"""Run untrusted code (model answers, dataset tests) in a sandbox, never in-process.

bubblewrap (Debian/Ubuntu package ``bubblewrap``) builds a file system that holds only what the code needs: the
interpreter and its libraries read-only (``/usr`` and, for an interpreter installed elsewhere, its own
prefix), a private ``/tmp``, fresh ``/dev`` and ``/proc``, and one writable throwaway directory. The home
directory, ``.env``, the feature store and the project are simply not there. New network, PID, IPC, UTS and
user namespaces: no network at all, and killing the sandbox's first process ends every process it started.

Limits come from ``prlimit`` (address space, CPU time, file size, processes, no core files) and a wall-clock
timeout after which the whole session is killed. Started as root, ``setpriv`` first drops to ``nobody``, so
the process-count limit applies (root is exempt from RLIMIT_NPROC). All three are programs in the command
line, exec'd one by the next, so nothing runs between fork and exec in the caller — safe in threaded Dask
workers, where a ``preexec_fn`` is not. There is no unsandboxed fallback: without these tools, code rewards
are an error.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from winnow.errors import MissingDependencyError

NOBODY = 65534
# Top-level directories that merged-/usr systems make symlinks into /usr (bound as the same symlinks), or that
# older systems keep as real directories of libraries and programs (bound read-only).
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5.0
    memory_mb: int = 512
    cpu_s: int = 10
    max_procs: int = 32
    max_file_mb: int = 16


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None  # None when killed at the timeout
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingDependencyError(f"code rewards run in a sandbox that needs {name}: apt-get install {package}")
    return path


def bwrap_path() -> str:
    return tool("bwrap", "bubblewrap")


def sandbox_python() -> str:
    """A stdlib interpreter the sandbox user can execute: the system one if present (a venv under /root is
    not readable by ``nobody``), else this interpreter."""
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    return sys.executable


def file_system(python: str, work: str) -> list[str]:
    """bubblewrap arguments for the sandbox's whole file system: nothing of the host is there unless named."""
    args = ["--ro-bind", "/usr", "/usr"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    real = os.path.realpath(python)
    if not real.startswith("/usr/"):  # an interpreter installed elsewhere (pyenv, conda): its own prefix only
        prefix = str(Path(real).parents[1])
        args += ["--ro-bind", prefix, prefix]
        if os.path.abspath(python) != real:
            args += ["--ro-bind", real, os.path.abspath(python)]
    return [*args, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--bind", work, work, "--chdir", work]


def command(limits: SandboxLimits, python: str, work: str) -> list[str]:
    """setpriv (root only) -> prlimit -> bwrap -> python: each execs the next."""
    mem, fsize = limits.memory_mb << 20, limits.max_file_mb << 20
    drop = ([tool("setpriv", "util-linux"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
            if os.getuid() == 0 else [])
    rlimits = [tool("prlimit", "util-linux"), f"--as={mem}", f"--cpu={limits.cpu_s}", f"--fsize={fsize}",
               f"--nproc={limits.max_procs}", "--core=0", "--"]
    return [*drop, *rlimits, bwrap_path(), *file_system(python, work), "--unshare-all", "--unshare-user",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", work, python, "-I", "-S", "main.py"]


def run_python(code: str, *, limits: SandboxLimits = SandboxLimits(), stdin: str = "") -> SandboxResult:
    """Run ``code`` with a stdlib interpreter inside the sandbox, in a fresh temporary directory."""
    with tempfile.TemporaryDirectory(prefix="winnow-sandbox-") as work:
        Path(work, "main.py").write_text(code)
        if os.getuid() == 0:
            os.chown(work, NOBODY, NOBODY)
            os.chmod(work, 0o700)
        proc = subprocess.Popen(command(limits, sandbox_python(), work), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=limits.timeout_s)
            return SandboxResult(proc.returncode, out[-10_000:], err[-10_000:], False)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have ended on its own meanwhile
                os.killpg(proc.pid, signal.SIGKILL)  # the session: bwrap and, through its PID namespace, all
            out, err = proc.communicate()
            return SandboxResult(None, out[-10_000:], err[-10_000:], True)
