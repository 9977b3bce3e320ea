"""One Python environment per `env_hash`: ``<home>/envs/<hash>/``, built once, then read-only.

The build runs in the sandbox as uid 65534 with network (and nothing else of the node):
``python -m venv --without-pip`` then ``pip --python <env>/bin/python install
--only-binary=:all: <pins>`` (wheels only: no package's setup code runs). It builds into a
temporary folder beside the cache and is renamed into place, so a crash never leaves a
half environment; a file lock keeps one build per hash at a time, across threads and nodes.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from . import sandbox
from .bundle import Manifest


class BuildError(Exception):
    """The environment could not be built; the message ends with pip's last lines."""


def folder(home: Path) -> Path:
    return home / "envs"


def path(home: Path, env_hash: str) -> Path:
    return folder(home) / env_hash


def is_cached(home: Path, env_hash: str) -> bool:
    return (path(home, env_hash) / "bin" / "python").exists()


@contextmanager
def _lock(home: Path, env_hash: str):
    folder(home).mkdir(parents=True, exist_ok=True)
    with open(folder(home) / f".{env_hash}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure(home: Path, manifest: Manifest, limits: sandbox.Limits, on_start=None) -> Path:
    """The environment folder for `manifest`, building it if absent (``on_start()`` is called
    then, so the job can say `building`). BuildError if pip failed."""
    env_hash = manifest.env_hash()
    target = path(home, env_hash)
    if is_cached(home, env_hash):
        return target
    with _lock(home, env_hash):
        if is_cached(home, env_hash):  # another job built it while this one waited
            return target
        if on_start:
            on_start()
        build = Path(tempfile.mkdtemp(dir=folder(home), prefix=f".build-{env_hash[:12]}-"))
        try:
            _build(build, manifest.pins(), limits)
            _read_only(build)
            os.chmod(build, 0o555)  # mkdtemp made it 0700: jobs (uid 65534) read it
            os.replace(build, target)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return target


def _build(build: Path, pins: list[str], limits: sandbox.Limits) -> None:
    os.chown(build, sandbox.SANDBOX_UID, sandbox.SANDBOX_GID) if os.geteuid() == 0 else None
    work = sandbox.new_workdir()
    log = Path(tempfile.mkstemp(prefix="gridmart-build-log-")[1])
    script = "import subprocess, sys\n" \
             "env, pins = sys.argv[1], sys.argv[2:]\n" \
             "subprocess.run([sys.executable, '-m', 'venv', '--without-pip', env], check=True)\n" \
             "if pins:\n" \
             "    subprocess.run([sys.executable, '-m', 'pip', '--python', env + '/bin/python', 'install', " \
             "'--no-input', '--only-binary=:all:', *pins], check=True)\n"
    (work / "build.py").write_text(script)
    options = sandbox.Options(network=True, mounts=(sandbox.Mount(build, "env", writable=True),),
                              env=tuple(pip_environment().items()), log=log)
    try:
        sandbox.start([str(work / "build.py"), str(work / "env"), *pins], work, limits, options).wait()
    except sandbox.SandboxError as exc:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-6:])
        raise BuildError(f"the environment build failed ({exc.message}); pip said:\n{tail}") from None
    finally:
        log.unlink(missing_ok=True)
        sandbox.remove_workdir(work)


def _read_only(root: Path) -> None:
    """Owned by root, no write bit: a job (uid 65534) cannot change an environment others share."""
    for dirpath, dirs, files in os.walk(root):
        for name in (dirpath, *(os.path.join(dirpath, n) for n in files + dirs)):
            if os.path.islink(name):
                continue
            if os.geteuid() == 0:
                os.chown(name, 0, 0)
            os.chmod(name, os.stat(name).st_mode & 0o555 | 0o444)


@lru_cache
def pip_environment() -> dict[str, str]:
    """The node's effective pip configuration as PIP_* variables: its config files live where
    uid 65534 cannot read them (/root/.config/pip), and the build must use the same indexes."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         timeout=60).stdout
    env = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        name = key.rsplit(".", 1)[1]
        env[f"PIP_{name.upper().replace('-', '_')}"] = value.strip().strip("'\"")
    return env
