"""A federation of provinces worth federating: the recipe of seed 003 §3.4 (docs/fl.md).

Each province's training data are SGCC-format (``generate_sgcc``) with its own size (10,000
customers on average, 2,000 to 20,000), consumption regime (climate and electric heating or
cooling, customer mix, consumption level, missing readings, late meters, reading errors) and
theft rate, and, the point of federating,
each has caught only some theft techniques (Jokar et al.'s six false-data injections,
``analytics.data.attacks``): its inspectors found what they looked for. Every province is
scored on a test set of its own customers that holds all six, half of them thieves, as the
seed's 55.5 % "alone" accuracy implies: what it will meet next year, not what it has seen.

Same arguments, same frames, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .attacks import ATTACK_TYPES
from .sgcc import SGCC_DAYS, generate_sgcc_with_truth


@dataclass(frozen=True)
class Province:
    name: str
    customers: int
    theft_rate: float
    #: the theft techniques in this province's labelled data (its test set holds all six)
    attacks_seen: tuple[str, ...]
    #: ProvinceProfile knobs: climate, customer mix, consumption level, missing data
    profile: dict = field(default_factory=dict)


#: five provinces, 50,000 customers (10,000 on average, as in the seed), each technique seen
#: by one or two of them; sizes, theft rates and regimes as different as China's provinces
PROVINCES: tuple[Province, ...] = (
    Province("Jiangsu", 20000, 0.06, ("partial_reduction",),
             dict(consumption_scale=1.0, mean_temperature=15.5)),
    Province("Heilongjiang", 14000, 0.04, ("zero_windows",),
             dict(consumption_scale=1.8, mean_temperature=3.5, temperature_amplitude=20.0, heating_share=0.6,
                  class_mix=(0.7, 0.2, 0.1))),
    Province("Guangdong", 8000, 0.10, ("random_scaling", "mean_scaling"),
             dict(consumption_scale=0.6, mean_temperature=22.5, cooling_sensitivity=2.0, temperature_amplitude=6.0)),
    Province("Gansu", 6000, 0.08, ("constant_mean",),
             dict(consumption_scale=1.3, mean_temperature=8.0, missing_rate=0.08, late_start_share=0.2)),
    Province("Hainan", 2000, 0.12, ("reversed_order", "zero_windows"),
             dict(consumption_scale=0.8, mean_temperature=25.0, temperature_amplitude=4.0,
                  class_mix=(0.95, 0.04, 0.01), outlier_rate=0.002)),
)
TEST_CUSTOMERS = 2000
TEST_THEFT_RATE = 0.5


def province_data(province: Province, index: int, scale: float = 1.0, days: int = SGCC_DAYS,
                  seed: int = 0, truth: bool = False) -> tuple:
    """(training frame, test frame) of one province: the training frame holds only the
    techniques it has seen, the test frame (other customers, same regime) all six. With
    `truth`, each frame comes as (frame, hidden truth: customer class, attack type, onset)."""
    def make(n: int, rate: float, seed_: int, attacks: tuple[str, ...]):
        both = generate_sgcc_with_truth(n, days, rate, seed_, attack_types=attacks, **province.profile)
        return both if truth else both[0]

    return (make(max(200, int(province.customers * scale)), province.theft_rate, seed * 1000 + 100 + index,
                 province.attacks_seen),
            make(max(400, int(TEST_CUSTOMERS * scale)), TEST_THEFT_RATE, seed * 1000 + 900 + index, ATTACK_TYPES))


def federation(scale: float = 1.0, days: int = SGCC_DAYS, seed: int = 0,
               provinces: tuple[Province, ...] = PROVINCES) -> list[tuple[Province, pd.DataFrame, pd.DataFrame]]:
    """Every province's (recipe, training frame, test frame)."""
    return [(p, *province_data(p, i, scale, days, seed)) for i, p in enumerate(provinces)]
