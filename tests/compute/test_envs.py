"""Environments: a real wheel from the node's configured index, built once and then cached; a pin that does not exist fails clearly."""
from __future__ import annotations

from .conftest import make_bundle

USES_SIX = """
    import six
    print("six", six.__version__, six.__file__, flush=True)
    open(os.environ["GRIDMART_OUTPUT"], "w").write(six.__version__)
"""


def test_a_pinned_wheel_is_built_once_then_cached(client, node):
    cold = client.run(make_bundle(USES_SIX, requirements=["six==1.17.0"]))
    assert cold["state"] == "done", cold["error"]
    assert client.http.get(f"/jobs/{cold['id']}/result").content == b"1.17.0"
    assert f"/env/lib/python3.11/site-packages/six.py" in client.logs(cold["id"])
    env = node.home / "envs" / cold["env_hash"]
    assert (env / "bin" / "python").exists() and not (env.stat().st_mode & 0o222)
    built = env.stat().st_mtime_ns

    warm = client.run(make_bundle(USES_SIX + "    print('other code, same environment')\n", requirements=["SIX==1.17.0"]))
    assert warm["state"] == "done", warm["error"]
    assert warm["env_hash"] == cold["env_hash"] and env.stat().st_mtime_ns == built
    states = _states_seen(client, make_bundle(USES_SIX + "    print('third')\n", requirements=["six==1.17.0"]))
    assert "building" not in states and states[-1] == "done"


def test_a_pin_that_does_not_exist_fails_with_pips_reason(client, node):
    job = client.run(make_bundle(USES_SIX, requirements=["six==0.0.999"]))
    assert job["state"] == "failed"
    assert "the environment build failed" in job["error"] and "six==0.0.999" in job["error"], job["error"]
    assert not (node.home / "envs" / job["env_hash"]).exists()
    assert not [p for p in (node.home / "envs").iterdir() if p.name.startswith(".build-")]


def _states_seen(client, archive) -> list[str]:
    job_id = client.submit(archive).json()["id"]
    seen: list[str] = []
    while not seen or seen[-1] not in ("done", "failed", "cancelled"):
        state = client.job(job_id)["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
    return seen
