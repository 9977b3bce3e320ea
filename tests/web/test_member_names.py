"""#18 item 7: the FL zone names its owner and partners by member name, the address on hover."""
from __future__ import annotations

import re

import numpy as np
from eth_account import Account
from playwright.sync_api import expect

from fl_coordinator import he
from fl_coordinator.keys import wallet_public_key
from fl_coordinator.model import FedMLPClassifier
from ledger_node.contracts import Role

from .test_product_pages import shots


def test_fl_zone_names_its_members(open_as, fl_service, member, screenshots):
    (owner, _), (north, _), (south, _) = (member(role, name) for role, name in (
        (Role.PUBLISHER, "Institute East"), (Role.SUBSCRIBER, "North Grid"), (Role.SUBSCRIBER, "South Grid")))
    keys = he.generate("plain")
    model = FedMLPClassifier(hidden=()).init_weights(3)
    task = fl_service.create_task(owner.address, name="Load forecasting, named partners",
                                  architecture=model.architecture(), initial_weights=model.get_weights(),
                                  backend="plain", public_context=keys.public().public_bytes, rounds=1,
                                  min_partners=2, round_seconds=600, training={}, dp=None, seed=0)
    for partner in (north, south):
        fl_service.join(task.task_id, partner.address, wallet_public_key(partner.key))
    fl_service.put_envelopes(task.task_id, owner.address, {north.address: b"sealed", south.address: b"sealed"})
    fl_service.start(task.task_id, owner.address)
    for partner, samples in ((north, 300), (south, 100)):
        fl_service.submit(task.task_id, 1, partner.address, keys.encrypt(np.zeros(task.n_params)), samples)

    page, _ = open_as(Account.create())
    page.goto("/web/fl.html")
    page.get_by_role("link", name="Load forecasting, named partners").click()
    owner_cell = page.locator("dt:has-text('Owner') + dd span")
    expect(owner_cell).to_have_text(f"Institute East {owner.address}")
    expect(owner_cell).to_have_attribute("title", owner.address)
    partners = page.locator("table", has=page.locator("caption", has_text="Partners")).locator("tbody tr")
    expect(partners.filter(has_text="North Grid").locator("span")).to_have_attribute("title", north.address)
    expect(partners.filter(has_text="South Grid")).to_contain_text(south.address)
    short = f"{north.address[:6]}…{north.address[-4:]}"
    expect(page.locator("table", has=page.locator("caption", has_text="Rounds")).locator("tbody tr").first).to_contain_text(
        re.compile(rf"North Grid \({re.escape(short)}\) 75\.00 %"))
    shots(page, screenshots, "fl-task")
