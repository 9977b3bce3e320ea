"""Hostile bundles on a real node: each is stopped with a clear job error, and the node runs the next job fine."""
from __future__ import annotations

import gzip
import io
import json
import secrets
import shutil
import tarfile
from pathlib import Path

import pytest

from ledger_node.compute import bundle, sandbox
from ledger_node.config import REPO_ROOT, get_settings as ledger_settings

from .conftest import Client, make_bundle, start_node

HEALTHY = make_bundle("""open(os.environ["GRIDMART_OUTPUT"], "w").write("ok")""")


@pytest.fixture
def still_fine(client):
    yield
    job = client.run(HEALTHY)
    assert job["state"] == "done", job["error"]


def reports(client, code: str) -> dict:
    """Run `code` (it fills the dict `seen`) and return what it saw, from its output."""
    job = client.run(make_bundle("import json\nseen = {}\n" + code +
                                 '\nopen(os.environ["GRIDMART_OUTPUT"], "w").write(json.dumps(seen))\n'))
    assert job["state"] == "done", job["error"]
    return json.loads(client.http.get(f"/jobs/{job['id']}/result").content)


def test_no_network_not_even_the_nodes_own_port(client, node, still_fine):
    seen = reports(client, f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {node.port}), timeout=3)
    seen["node"] = "connected"
except OSError as exc:
    seen["node"] = type(exc).__name__
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3)
    seen["internet"] = "connected"
except OSError as exc:
    seen["internet"] = type(exc).__name__
""")
    assert seen["node"] != "connected" and seen["internet"] != "connected", seen


def test_nothing_outside_its_folder_is_readable(client, node, still_fine):
    other = client.run(make_bundle("""open(os.environ["GRIDMART_OUTPUT"], "w").write("someone else's result")"""))
    paths = [node.home / "jobs.db", node.home / "node.log", node.home / "jobs" / other["id"] / "result",
             node.home / "jobs", node.home, "/root", "/root/.config/pip/pip.conf", f"/proc/{node.proc.pid}/environ"]
    seen = reports(client, f"""
for path in {[str(p) for p in paths]!r}:
    try:
        seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path, "rb").read(64).decode("latin-1")
    except OSError as exc:
        seen[path] = type(exc).__name__
seen["env"] = {{k: v for k, v in os.environ.items() if "TOKEN" in k or k.startswith("GRIDMART_COMPUTE")}}
seen["tmp"] = sorted(os.listdir("/tmp"))
""")
    assert seen.pop("/root") in ("PermissionError", [".pyenv"])  # at most the interpreter is exposed there
    for path in map(str, paths[:-3] + paths[-2:]):
        assert seen[path] in ("FileNotFoundError", "PermissionError", []), (path, seen[path])
    # the run's own folder, and only what it needs that lives under /tmp too (a checkout there, as CI's)
    needed = {Path(p).relative_to("/tmp").parts[0] for p in sandbox._needed_paths() if Path(p).is_relative_to("/tmp")}
    runs = [name for name in seen["tmp"] if name not in needed]
    assert seen["env"] == {} and len(runs) == 1 and runs[0].startswith("gridmart-run-"), seen
    assert node.token not in json.dumps(seen)


def test_the_bundle_and_environment_are_read_only(client, still_fine):
    seen = reports(client, """
for path in ("main.py", "../env/pyvenv.cfg", os.environ.get("GRIDMART_DATA") or "../bundle/new"):
    try:
        open(path, "a").write("x")
        seen[path] = "written"
    except OSError as exc:
        seen[path] = type(exc).__name__
""")
    assert "written" not in seen.values(), seen


@pytest.mark.parametrize("code, limits, reason", [
    ("while True:\n    os.fork()\n", {"processes": 16, "wall_seconds": 20}, "exit status"),
    ("blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n", {"memory_mb": 256},
     "more than its 256 MiB of memory"),
    ("import time\ntime.sleep(600)\n", {"wall_seconds": 2}, "longer than 2 s"),
    ("while True:\n    pass\n", {"cpu_seconds": 1, "wall_seconds": 30}, "more than 1 s of CPU"),
    ("f = open(os.environ['GRIDMART_OUTPUT'], 'wb')\nwhile True:\n    f.write(b'x' * (1 << 20))\n",
     {"output_mb": 2}, "past its 2 MiB limit"),
    ("os.symlink('/etc/passwd', os.environ['GRIDMART_OUTPUT'])\n", {}, "unusable result"),
    ("raise SystemExit('refusing to work')\n", {}, "refusing to work"),
])
def test_a_hostile_entry_is_stopped_with_a_clear_error(client, still_fine, code, limits, reason):
    job = client.run(make_bundle(code, resources=limits))
    assert job["state"] == "failed" and reason in job["error"], job["error"]


def _tar(entries: list[tarfile.TarInfo], payload: bytes = b"print('x')\n") -> bytes:
    manifest = json.dumps({"format": bundle.FORMAT, "name": "evil", "version": "1", "entry_point": "main.py",
                           "output": {"media_type": "text/plain"}}).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for data, name in ((manifest, bundle.MANIFEST), (payload, "main.py")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in entries:
            tar.addfile(info, io.BytesIO(payload) if info.isfile() else None)
    return buffer.getvalue()


def _entry(name: str, **kw) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    for key, value in kw.items():
        setattr(info, key, value)
    if info.isfile():
        info.size = len(b"print('x')\n")
    return info


@pytest.mark.parametrize("entry, reason", [
    (_entry("../escaped.py"), "unsafe path"),
    (_entry("/abs.py"), "unsafe path"),
    (_entry("link", type=tarfile.SYMTYPE, linkname="/root"), "a link or special file"),
    (_entry("hard", type=tarfile.LNKTYPE, linkname="main.py"), "a link or special file"),
])
def test_an_archive_with_unsafe_entries_is_refused_at_inspect(client, still_fine, entry, reason):
    job = client.run(_tar([entry]))
    assert job["state"] == "failed" and job["error"].startswith("the bundle was refused") and reason in job["error"], \
        job["error"]


def test_a_broken_manifest_or_archive_is_refused(client, still_fine):
    job = client.run(b"not a tar at all")
    assert job["state"] == "failed" and "not a readable tar archive" in job["error"]


@pytest.mark.parametrize("inside_project", [False, True], ids=["session home", "home inside the checkout"])
def test_a_node_kept_in_the_data_folder_still_hides_it(inside_project):
    """`gridmart up` keeps the node in <GRIDMART_HOME>/compute, and the default GRIDMART_HOME is
    the checkout's .gridmart: both folders stay hidden from a run, also when the checkout is
    bound back into the run's fresh /tmp (a clone under /tmp, as CI's)."""
    data = REPO_ROOT / f".gridmart-probe-{secrets.token_hex(4)}" if inside_project else ledger_settings().home
    home = data / f"compute-{secrets.token_hex(4)}"
    (data / "keystores").mkdir(parents=True, exist_ok=True)
    (data / "keystores" / "operator.json").write_text("a keystore")
    node = start_node(home, env={"GRIDMART_HOME": str(data)})
    try:
        seen = reports(Client(node), f"""
for path in {[str(home / "jobs.db"), str(home), str(data), str(data / "keystores" / "operator.json")]!r}:
    try:
        seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path, "rb").read(16).decode("latin-1")
    except OSError as exc:
        seen[path] = type(exc).__name__
""")
    finally:
        node.stop()
        shutil.rmtree(data if inside_project else home, ignore_errors=True)
    assert all(v in ("FileNotFoundError", "PermissionError", []) for v in seen.values()), seen
