"""Issue #21 item 1: product code runs only in the sandbox, which holds no key and reaches nothing.

Real processes, no mocks: each probe is a Python script run by the same launcher that
remote-run uses (ledger_node/compute/sandbox.py), and the end-to-end case publishes, buys
and runs a malicious product on the real marketplace (tests/market/conftest.py).
"""
from __future__ import annotations

import io
import json
import os
import socket
import stat
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from ledger_node.config import get_settings as ledger_settings, secure_home
from marketplace.client import ApiError
from ledger_node.compute import sandbox
from marketplace.settings import MarketplaceSettings
from tests.security.malicious import marker_code, poison

ISO = sandbox.isolation()
needs_namespaces = pytest.mark.skipif(not ISO.namespaces, reason="unshare is not allowed here: " + ISO.describe())


def probe(body: str, limits: sandbox.Limits = sandbox.Limits(wall_seconds=60), keep=None):
    """Run ``body`` (Python, with ``out(name, value)`` to report) in the sandbox; returns its
    reports as a dict. ``keep``: a list to append the work folder to instead of removing it."""
    work = sandbox.new_workdir()
    (work / "probe.py").write_text("import json, os, sys\nOUT = sys.argv[1]\n"
                                   "def out(name, value):\n"
                                   "    open(os.path.join(OUT, name + '.report'), 'w').write(json.dumps(value))\n"
                                   + textwrap.dedent(body))
    try:
        sandbox.run_python([str(work / "probe.py"), str(work / "out")], work, limits)
        return {p.stem: json.loads(p.read_text()) for p in (work / "out").glob("*.report")}
    finally:
        if keep is None:
            sandbox.remove_workdir(work)
        else:
            keep.append(work)


@pytest.fixture(scope="module")
def secrets_on_disk():
    """The session data folder as the server leaves it: a keystore and the session key, 0700/0600."""
    from ledger_node.wallets import create_wallet

    home = ledger_settings().home
    keystore = create_wallet(f"sandbox-probe-{os.getpid()}", "probe").path
    session_key = home / "session.key"
    MarketplaceSettings(session_secret=None).resolved_secret()
    secure_home()
    return home, keystore, session_key


def test_a_probe_sees_no_secret_in_its_environment_or_on_disk(secrets_on_disk, monkeypatch):
    home, keystore, session_key = secrets_on_disk
    monkeypatch.setenv("GRIDMART_WALLET_PASSWORD", "the operator's password")
    monkeypatch.setenv("GRIDMART_SESSION_SECRET", "the session secret")
    seen = probe(f"""
        out("env", sorted(os.environ))
        out("ids", [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()])
        for name, path in (("keystores", {str(keystore.parent)!r}), ("home", {str(home)!r})):
            try:
                out(name, os.listdir(path))
            except OSError as exc:
                out(name, type(exc).__name__)
        for name, path in (("keystore", {str(keystore)!r}), ("session_key", {str(session_key)!r}),
                           ("server_environ", "/proc/{os.getpid()}/environ")):
            try:
                out(name, open(path, "rb").read().decode(errors="replace"))
            except OSError as exc:
                out(name, type(exc).__name__)
    """)
    assert not [v for v in seen["env"] if v.startswith("GRIDMART")]
    assert set(seen["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "MPLBACKEND", "MPLCONFIGDIR", "NUMBA_CACHE_DIR",
                                "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PWD", "OLDPWD", *sandbox._THREADS}
    for name in ("keystores", "home", "keystore", "session_key", "server_environ"):
        assert seen[name] in ("PermissionError", "FileNotFoundError"), (name, seen[name])
    if os.geteuid() == 0:
        assert seen["ids"] == [65534, 65534, 65534, []]


def test_the_data_folder_is_private(secrets_on_disk):
    home, keystore, session_key = secrets_on_disk
    os.chmod(home, 0o755)
    os.chmod(keystore, 0o644)
    os.chmod(session_key, 0o644)
    secure_home()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(keystore.parent.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600 == stat.S_IMODE(session_key.stat().st_mode)


@needs_namespaces
def test_a_probe_cannot_connect_to_a_local_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        seen = probe(f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
                out("connect", "connected")
            except OSError as exc:
                out("connect", type(exc).__name__)
        """)
    assert seen["connect"] != "connected"


def test_a_run_past_its_wall_clock_is_killed_with_what_it_started(tmp_path):
    kept: list[Path] = []
    started = time.monotonic()
    with pytest.raises(sandbox.SandboxError) as err:
        probe("""
            import subprocess, time
            late = os.path.join(OUT, "late")
            subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(4); open({late!r}, 'w')"],
                             start_new_session=True)
            time.sleep(60)
        """, sandbox.Limits(wall_seconds=2), keep=kept)
    try:
        assert err.value.kind == "timeout" and "longer than 2 s" in err.value.message
        assert time.monotonic() - started < 20
        if ISO.namespaces:  # the PID namespace dies with the run, even a process in a session of its own
            time.sleep(5)
            assert not (kept[0] / "out" / "late").exists()
    finally:
        sandbox.remove_workdir(kept[0])


def test_a_run_past_its_memory_limit_is_stopped():
    with pytest.raises(sandbox.SandboxError) as err:
        probe("block = bytearray(3 << 30)\nout('allocated', len(block))\n",
              sandbox.Limits(wall_seconds=60, memory_bytes=1 << 30))
    assert err.value.kind == "memory" and "1024 MiB" in err.value.message


def test_a_run_past_its_cpu_limit_is_stopped():
    with pytest.raises(sandbox.SandboxError) as err:
        probe("while True:\n    pass\n", sandbox.Limits(wall_seconds=60, cpu_seconds=1))
    assert err.value.kind == "timeout" and "CPU" in err.value.message


def test_the_parent_survives_a_crash_a_huge_output_and_a_link_to_its_secrets(secrets_on_disk):
    _, _, session_key = secrets_on_disk
    with pytest.raises(sandbox.SandboxError) as err:
        probe("import ctypes\nctypes.string_at(0)\n")  # segfault
    assert err.value.kind == "crash"

    with pytest.raises(sandbox.SandboxError) as err:  # the file-size limit stops the writer
        probe("open(os.path.join(OUT, 'result'), 'wb').write(b'x' * (16 << 20))\n",
              sandbox.Limits(wall_seconds=60, file_bytes=4 << 20))
    assert err.value.kind == "crash"

    kept: list[Path] = []
    probe("open(os.path.join(OUT, 'result'), 'wb').write(b'x' * (8 << 20))\n"
          f"os.symlink({str(session_key)!r}, os.path.join(OUT, 'status.json'))\n", keep=kept)
    try:
        with pytest.raises(sandbox.SandboxError, match="larger than 1 MiB"):
            sandbox.read_output(kept[0], "result", 1 << 20)
        with pytest.raises(sandbox.SandboxError, match="unusable status.json"):
            sandbox.read_output(kept[0], "status.json", 1 << 20)
    finally:
        sandbox.remove_workdir(kept[0])
    assert probe("out('alive', True)\n") == {"alive": True}


def test_the_wallet_password_is_dropped_once_the_keystore_is_unlocked(devnet, gm, operator, monkeypatch, tmp_path):
    from ledger_node.wallets import create_wallet
    from marketplace.services.context import Context

    monkeypatch.setattr(ledger_settings(), "rpc_url", devnet.url)  # Context.build connects like `gridmart serve`
    name = f"sandbox-operator-{os.getpid()}"
    create_wallet(name, "unlock me", operator.key)
    monkeypatch.setenv("GRIDMART_WALLET_PASSWORD", "unlock me")
    settings = MarketplaceSettings(operator_wallet=name, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                   session_secret="s")
    assert settings.wallet_password == "unlock me"
    ctx = Context.build(settings)
    assert ctx.operator.address == operator.address
    assert "GRIDMART_WALLET_PASSWORD" not in os.environ and settings.wallet_password is None
    assert stat.S_IMODE(ledger_settings().home.stat().st_mode) == 0o700


@pytest.fixture(scope="module")
def malicious_bundle(tmp_path_factory):
    """A real theft-detection bundle whose model, once loaded, would create ``marker`` in a
    folder anyone (the sandbox user included) may write to: so if it ran, we would see it."""
    from analytics import registry

    folder = tmp_path_factory.mktemp("malicious")
    model_path, _ = registry.train("theft-detection", folder / "model", size=300, seed=3)
    drop = Path(tempfile.mkdtemp(prefix="gridmart-marker-"))
    os.chmod(drop, 0o1777)
    marker = drop / "ran"
    poison(model_path, "builtins", "exec", marker_code(marker))
    bundle = folder / "theft-detection.tar"
    with tarfile.open(bundle, "w") as tar:
        for f in model_path.parent.iterdir():
            tar.add(f, arcname=f.name)
    yield bundle, marker
    marker.unlink(missing_ok=True)
    drop.rmdir()


def test_a_malicious_product_is_refused_end_to_end_and_nothing_runs(client, unit, malicious_bundle, tmp_path):
    from analytics.data.sgcc import generate_sgcc

    bundle, marker = malicious_bundle
    _, as_pub = unit(("publisher",), "Mallory grid")
    _, as_sub = unit(("subscriber",), "Victim grid")
    listing = as_pub.publish(bundle, {"title": "Theft detection (free upgrade)", "kind": "application",
                                      "sharing_mode": "remote-run", "runner": "theft-detection"}, encrypt=True)
    client().approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", 10, 2)
    order = as_sub.buy(listing["product_id"], "per-use")
    customers = tmp_path / "customers.csv"
    generate_sgcc(10, seed=5).to_csv(customers, index=False)
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    with pytest.raises(ApiError) as err:
        as_sub.run(delivery, customers)
    assert err.value.status == 400
    assert "model was refused" in err.value.detail and "builtins.exec" in err.value.detail
    assert "/tmp/" not in err.value.detail
    assert not marker.exists()


def test_a_bundle_that_is_no_tar_gets_a_clear_error(client, unit, tmp_path):
    _, as_pub = unit(("publisher",), "Careless grid")
    _, as_sub = unit(("subscriber",), "Buyer grid")
    junk = tmp_path / "model.tar"
    junk.write_bytes(io.BytesIO(b"not a tar at all" * 100).getvalue())
    listing = as_pub.publish(junk, {"title": "Broken product", "kind": "application",
                                    "sharing_mode": "remote-run", "runner": "charge-risk"})
    client().approve(listing["certificate_id"])
    as_pub.set_plan(listing["product_id"], "per-use", 10, 2)
    order = as_sub.buy(listing["product_id"], "per-use")
    posted = tmp_path / "bills.csv"
    posted.write_text("customer_id\n1\n")
    delivery = as_sub.redeem(as_sub.sign_voucher(order["licence_id"], purpose="run"))
    with pytest.raises(ApiError) as err:
        as_sub.run(delivery, posted)
    assert err.value.status == 400 and "bundle is not a readable tar" in err.value.detail


@needs_namespaces
def test_a_run_cannot_see_another_runs_work_folder():
    other = sandbox.new_workdir()  # as the launcher leaves a concurrent run's folder: its data is nobody's
    try:
        (other / "input").write_text("another subscriber's data")
        sandbox._chown_tree(other)
        os.chmod(other, 0o711)
        seen = probe(f"""
            out("tmp", os.listdir({str(other.parent)!r}))
            try:
                out("other", open({str(other / "input")!r}).read())
            except OSError as exc:
                out("other", type(exc).__name__)
        """)
    finally:
        sandbox.remove_workdir(other)
    own = [name for name in seen["tmp"] if name.startswith("gridmart-run-")]
    assert len(own) == 1 and other.name not in seen["tmp"]
    # nothing else, except the way to a project that itself lives in this folder (a checkout under /tmp)
    project = sandbox._needed_paths()
    assert all(any(Path(p).is_relative_to(other.parent / name) for p in project) for name in seen["tmp"] if name not in own)
    assert seen["other"] == "FileNotFoundError"


@pytest.mark.parametrize("limits,error,status,text", [
    (sandbox.Limits(wall_seconds=0.5), "RunFailed", 422, "longer than 0.5 s and was stopped: post a smaller input"),
    (sandbox.Limits(memory_bytes=200 << 20), "TooLarge", 413, "more than its 200 MiB of memory: post a smaller input"),
])
def test_the_worker_past_a_limit_answers_a_clear_error(limits, error, status, text):
    from marketplace.services import runner

    work = sandbox.new_workdir()
    try:
        (work / "job.json").write_text(json.dumps({"runner": "heatmap"}))
        (work / "artifact").write_text("{}")
        (work / "input").write_bytes(b"not a zip")
        with pytest.raises(runner.ServiceError) as err:
            runner.run_in_sandbox(work, limits)
    finally:
        sandbox.remove_workdir(work)
    assert type(err.value).__name__ == error and err.value.status_code == status and text in err.value.message
