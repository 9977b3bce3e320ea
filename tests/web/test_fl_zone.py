"""The federated-learning zone page: a finished two-partner task, its rounds, shares and convergence plot."""
from __future__ import annotations

import numpy as np
from eth_account import Account
from playwright.sync_api import expect

from fl_coordinator import he
from fl_coordinator.keys import wallet_public_key
from fl_coordinator.model import FedMLPClassifier
from ledger_node.contracts import Role

from .pages import message


def test_fl_zone_shows_rounds_shares_and_the_convergence_plot(open_as, fl_service, member, screenshots):
    owner, north, south = (member(role)[0] for role in (Role.PUBLISHER, Role.SUBSCRIBER, Role.SUBSCRIBER))
    keys = he.generate("plain")
    model = FedMLPClassifier(hidden=()).init_weights(3)
    task = fl_service.create_task(owner.address, name="Theft detection, two provinces",
                                  architecture=model.architecture(), initial_weights=model.get_weights(),
                                  backend="plain", public_context=keys.public().public_bytes, rounds=2,
                                  min_partners=2, round_seconds=600, training={}, dp=None, seed=0)
    for partner in (north, south):
        fl_service.join(task.task_id, partner.address, wallet_public_key(partner.key))
    fl_service.put_envelopes(task.task_id, owner.address, {north.address: b"sealed", south.address: b"sealed"})
    fl_service.start(task.task_id, owner.address)
    for r in (1, 2):
        for partner, samples in ((north, 300), (south, 100)):
            fl_service.submit(task.task_id, r, partner.address, keys.encrypt(np.zeros(task.n_params)), samples)
        for partner in (north, south):
            fl_service.report_metrics(task.task_id, r, partner.address, {
                "federated": {"auc": 0.7 + 0.1 * r}, "local": {"auc": 0.66}, "n_val": 50})
    assert task.status == "done"

    page, _ = open_as(Account.create())  # anyone may look; no sign-in needed
    page.goto("/web/fl.html")
    page.get_by_role("link", name="Theft detection, two provinces").click()
    expect(page.locator("h1")).to_have_text("Federated learning: Theft detection, two provinces")
    expect(page.locator("dd").first).to_have_text("done")
    partners = page.get_by_role("table", name="Partners and their contribution shares")
    expect(partners).to_contain_text(north.address)
    expect(partners).to_contain_text("75.00 %")
    expect(partners).to_contain_text("25.00 %")
    chain = page.get_by_role("table", name="On chain")
    expect(chain).to_contain_text("2 of 2 rounds recorded")
    expect(chain).to_contain_text("open")
    rounds = page.get_by_role("table", name="Rounds").locator("tbody tr")
    expect(rounds).to_have_count(2)
    expect(rounds.nth(1)).to_contain_text("0.900")
    plot = page.locator("#convergence")
    expect(plot).to_be_visible()
    page.wait_for_function("document.querySelector('#convergence').complete")
    assert plot.evaluate("img => img.naturalWidth") > 300
    expect(message(page)).to_be_empty()
    page.screenshot(path=screenshots / "fl-01-task.png", full_page=True)

    page.goto("/web/fl.html?task=0xnothing")
    expect(message(page)).not_to_be_empty()
    expect(message(page)).not_to_contain_text("Traceback")
