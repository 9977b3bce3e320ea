"""An owner grants CKKS keys to five partners at once: the envelopes (~0.3 MB each) go in
as many requests as the coordinator's 1 MiB body limit needs (one request answered 413)."""
from __future__ import annotations

from fl_coordinator import he
from fl_coordinator.model import FedMLPClassifier
from fl_coordinator.partner import Coordinator


def test_five_ckks_envelopes_are_granted_within_the_body_limit(live_service, wallets):
    url, _ = live_service
    keyset = he.generate("ckks")
    assert 5 * len(he.dump_secret(keyset)) * 4 / 3 > 1 << 20  # base64 in one request: five are over the limit
    owner = Coordinator(url, wallets[0].key.hex())
    task = owner.create_task(name="five", model=FedMLPClassifier(hidden=(2,)).init_weights(4), keyset=keyset,
                             rounds=1, min_partners=5, round_seconds=60)
    partners = [Coordinator(url, w.key.hex()) for w in wallets[1:]]
    assert len(partners) == 5
    for p in partners:
        p.join(task["task_id"])
    granted = owner.grant_keys(task["task_id"], keyset)
    assert sorted(granted) == sorted(p.address for p in partners)
    assert all(p["has_key"] for p in owner.task(task["task_id"])["partners"])
    assert all(p.keyset(task["task_id"]).fingerprint == task["context_fingerprint"] for p in partners)
