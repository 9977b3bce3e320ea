"""Launcher of untrusted work: a child process that holds no key and can reach nothing.

Remote-run parses and runs bundles that publishers wrote, so that work never happens in
the API process (it holds the operator key, the session secret and every content key).
`run_python` starts ``python -I <args>`` in a fresh work folder with:

* a minimal environment (no GRIDMART_* variable, HOME and TMPDIR inside the work folder,
  one thread for OpenMP/BLAS/numba), no inherited file descriptors, its own session;
* resource limits (address space, CPU seconds, file size, open files, processes, no core
  files, via util-linux ``prlimit``) and a wall-clock timeout after which the whole
  process group is killed;
* when the server runs as root: uid/gid 65534 (``nobody``) with no groups, no
  capabilities and no-new-privs (``setpriv``); what the work folder holds is chowned to
  it, the folder itself stays root's (0711), so the run cannot swap ``out`` for a link;
* where the kernel allows (``unshare``): new network (no interface but a down loopback),
  PID (every process dies with the run; a fresh /proc shows no other process, so not the
  server's memory or environment), IPC and mount namespaces; in the mount namespace
  the data folder GRIDMART_HOME is covered by an empty tmpfs, a folder closed to others
  that holds the interpreter (pyenv under /root) is replaced by a tmpfs exposing only the
  interpreter, and the temporary folder by a tmpfs holding only this run's work folder
  (concurrent runs share uid 65534: they must not see each other's data). Without
  unshare the run falls back to the uid and limits alone.

The parent reads back only regular files the child wrote, up to a size cap.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ledger_node.config import get_settings as ledger_settings

SANDBOX_UID = SANDBOX_GID = 65534  # nobody / nogroup
_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
            "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 120.0
    cpu_seconds: int = 120
    memory_bytes: int = 3 << 30  # address space: importing pandas, scikit-learn and datashader takes ~1.5 GiB
    file_bytes: int = 1 << 30
    open_files: int = 256
    processes: int = 256  # counted per uid, threads included
    output_bytes: int = 64 << 20


#: how running out of address space shows on stderr (Python, libc, C++, the loader mapping a library)
_OUT_OF_MEMORY = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "failed to map segment")


class SandboxError(Exception):
    """The child did not finish (``kind``: timeout, memory, crash or output) or could not be
    started safely (``unavailable``)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass(frozen=True)
class Finished:
    returncode: int
    stderr_tail: str


@dataclass(frozen=True)
class Isolation:
    """What this machine allows; probed once (``describe`` says it in the log and docs)."""

    as_nobody: bool
    namespaces: bool

    def describe(self) -> str:
        who = "uid 65534" if self.as_nobody else "the server's uid"
        ns = "network/PID/IPC/mount namespaces" if self.namespaces else "NO namespaces (unshare failed)"
        return f"sandbox: {who}, {ns}, resource limits"


def new_workdir() -> Path:
    """A fresh 0700 folder outside the data folder; the child may write only here."""
    return Path(tempfile.mkdtemp(prefix="gridmart-run-"))


def remove_workdir(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


@lru_cache
def isolation() -> Isolation:
    as_nobody = os.geteuid() == 0
    probe = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--mount", "--mount-proc", "true"]
    if not as_nobody:
        probe.insert(1, "--map-root-user")
    try:
        ok = shutil.which("unshare") is not None and subprocess.run(
            probe, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return Isolation(as_nobody=as_nobody, namespaces=ok)


def run_python(args: list[str], work: Path, limits: Limits = Limits()) -> Finished:
    """Run ``python -I <args>`` sandboxed in ``work``; raises SandboxError if it was killed,
    hit a limit or crashed. The caller then reads what it wrote with ``read_output``."""
    iso = isolation()
    if not iso.as_nobody and not iso.namespaces:  # the run would have the server's uid and see its files
        raise SandboxError("unavailable", "remote runs are off on this server: it runs as a non-root user without "
                                          "user namespaces (unshare), so a run could not be kept from its keys")
    for sub in ("home", "tmp", "out"):
        (work / sub).mkdir(exist_ok=True)
    if iso.as_nobody:  # the folder stays root's, so the run cannot swap `out` for a link; what is in it is nobody's
        _chown_tree(work)
        os.chmod(work, 0o711)
    stderr_path = Path(tempfile.mkstemp(prefix="gridmart-run-stderr-")[1])  # the parent's, outside work
    try:
        with open(stderr_path, "r+b") as stderr:
            proc = subprocess.Popen(_command(iso, args, work, limits), cwd=work, env=_environment(work),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                    close_fds=True, start_new_session=True)
            try:
                returncode = proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise SandboxError("timeout", f"the run took longer than {limits.wall_seconds:g} s and was stopped")
            finally:
                _kill(proc)  # anything the child left in its group
            stderr.seek(max(0, os.fstat(stderr.fileno()).st_size - 4096))
            tail = stderr.read().decode(errors="replace")
    finally:
        stderr_path.unlink(missing_ok=True)
    if returncode == 0:
        return Finished(returncode, tail)
    if any(sign in tail for sign in _OUT_OF_MEMORY):
        raise SandboxError("memory", f"the run needed more than its {limits.memory_bytes >> 20} MiB of memory")
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        raise SandboxError("timeout", f"the run used more than {limits.cpu_seconds} s of CPU and was stopped")
    raise SandboxError("crash", f"the run failed (exit status {returncode})")


def read_output(work: Path, name: str, limit: int) -> bytes | None:
    """Bytes of ``work/out/<name>`` if the child wrote it as a regular file; never follows a
    link (the child could point one at a file only the parent may read); None if absent."""
    try:
        fd = os.open(work / "out" / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SandboxError("output", f"the run left an unusable {name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise SandboxError("output", f"the run left {name} as something other than a plain file")
        if info.st_size > limit:
            raise SandboxError("output", f"the run's {name} is larger than {limit >> 20} MiB")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise SandboxError("output", f"the run's {name} is larger than {limit >> 20} MiB")
    return data


def _environment(work: Path) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"),
           "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(work / "home" / "mpl"),
           "NUMBA_CACHE_DIR": str(work / "tmp" / "numba"), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "random"}
    return {**env, **{name: "1" for name in _THREADS}}


def _command(iso: Isolation, args: list[str], work: Path, limits: Limits) -> list[str]:
    python = [sys.executable, "-I", *args]
    rlimits = ["prlimit", f"--as={limits.memory_bytes}", f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
               f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}",
               f"--nproc={limits.processes}", "--core=0", "--"]
    drop = ["setpriv", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
    if iso.as_nobody:
        drop[1:1] = [f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}", "--clear-groups"]
    inner = [*drop, "--", *rlimits, *python]
    if not iso.namespaces:
        return inner
    unshare = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--mount", "--mount-proc"]
    if not iso.as_nobody:
        unshare.insert(1, "--map-root-user")
    # sh stays PID 1 of the namespace (init ignores signals it has no handler for, so the run must
    # not be init: the CPU limit's SIGXCPU would be lost) and exits with the run's status
    return [*unshare, "sh", "-ec", _mount_script(work, expose=iso.as_nobody) + shlex.join(inner)]


def _mount_script(work: Path, expose: bool) -> str:
    """Shell run as (namespace) root before the drop: hide the data folder and, when the
    child will run as nobody, expose the interpreter if it sits in a folder closed to others."""
    lines = []
    home = ledger_settings().home.resolve()
    if home.is_dir() and not work.resolve().is_relative_to(home):
        lines.append(f"mount -t tmpfs -o size=16k,mode=0500 gridmart-hidden {shlex.quote(str(home))}")
    staged = shlex.quote(str(work / "tmp" / "staged"))
    for closed, needed in (_closed_ancestors() if expose else {}).items():
        for i, path in enumerate(needed):
            lines += [f"mkdir -p {staged}/{i}", f"mount --bind {shlex.quote(path)} {staged}/{i}"]
        lines.append(f"mount -t tmpfs -o size=16k,mode=0755 gridmart-shadow {shlex.quote(closed)}")
        for i, path in enumerate(needed):
            lines += [f"mkdir -p {shlex.quote(path)}", f"mount --bind {staged}/{i} {shlex.quote(path)}",
                      f"umount {staged}/{i}"]
    # the temporary folder (other runs' work folders: other subscribers' data) is replaced by an
    # empty tmpfs holding only this run's work folder: built aside, then moved over it
    # (a project or interpreter that lives there too, e.g. a checkout under /tmp, is bound back in)
    work = work.resolve()
    parent, fresh = work.parent, work / "tmp" / "fresh"
    if parent != Path("/") and not any(Path(p).is_relative_to(parent) for ps in _closed_ancestors().values()
                                       for p in ps):
        q = lambda path: shlex.quote(str(path))  # noqa: E731
        lines += [f"mkdir {q(fresh)}", f"mount -t tmpfs -o size=64m,mode=1777 gridmart-tmp {q(fresh)}",
                  f"mkdir -m 0711 {q(fresh / work.name)}", f"mount --bind {q(work)} {q(fresh / work.name)}"]
        for path in (p for p in map(Path, _needed_paths()) if p.is_relative_to(parent)):
            inside = fresh / path.relative_to(parent)
            lines += [f"mkdir -p {q(inside)}", f"mount --bind {q(path)} {q(inside)}"]
        lines += [f"mount --move {q(fresh)} {q(parent)}", f"cd {q(work)}"]
    return "".join(f"{line}; " for line in lines)


@lru_cache
def _needed_paths() -> list[str]:
    """What the child must read, outermost folders only: the interpreter, the venv, the project."""
    paths = {Path(p).resolve() for p in (sys.base_prefix, sys.prefix, Path(__file__).parents[2],
                                         Path(sys.executable).resolve().parent)}
    return sorted(str(p) for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))


@lru_cache
def _closed_ancestors() -> dict[str, list[str]]:
    """Folders that others cannot traverse (mode without o+x) on the way to what the child
    must read: the interpreter, the venv and the project."""
    out: dict[str, list[str]] = {}
    for path in _needed_paths():
        for ancestor in reversed(Path(path).parents):
            if ancestor != Path("/") and not os.stat(ancestor).st_mode & stat.S_IXOTH:
                out.setdefault(str(ancestor), []).append(path)
                break
    return out


def _chown_tree(work: Path) -> None:
    for root, dirs, files in os.walk(work):
        for name in (*(os.path.join(root, n) for n in dirs + files),):
            os.lchown(name, SANDBOX_UID, SANDBOX_GID)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
