"""The six analytics products of seed 003 Table 2 and seed 002 §3.2, as registry entries."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, silhouette_score

from analytics.charge_risk import NUMERIC_FEATURES, billing_features, build_charge_risk_pipeline
from analytics.data import billing, equipment, loaders
from analytics.data.sgcc import generate_sgcc, generate_sgcc_with_truth
from analytics.data.transformers import generate_transformer_load
from analytics.equipment.failure import CATEGORICAL, NUMERIC, build_failure_pipeline
from analytics.equipment.lcc import life_cycle_cost
from analytics.equipment.manufacturers import rank_groups
from analytics.errors import AnalyticsError
from analytics.metrics import binary_report
from analytics.overload import FEATURES as OVERLOAD_FEATURES, build_overload_pipeline, daily_features
from analytics.portrait import PORTRAIT_FEATURES, build_portrait_pipeline, describe_segments
from analytics.product import Column, Product
from analytics.theft.anomaly import anomaly_score, build_anomaly_pipeline
from analytics.theft.features import FEATURE_NAMES
from analytics.theft.model import build_theft_pipeline, operating_threshold

_SGCC_INPUT = (
    Column("CONS_NO", "string", "customer number, unique per row"),
    Column("FLAG", "0/1, optional", "1 = confirmed electricity theft (needed to train only)"),
    Column("<date>", "float kWh >= 0, blank = missing", "one column per day, header like 2014/1/1 or 2014-01-01"),
)
_SGCC_FORMAT = ("csv, SGCC wide layout (one row per customer); a long meter file "
                "(meter_id, timestamp, kwh) is accepted too and summed per day")


def _days(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in ("CONS_NO", "FLAG") if c in frame.columns])


def _labels(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise AnalyticsError(f"training data needs the label column {column!r}")
    return frame[column].to_numpy()


class _SgccProduct(Product):
    """Products that read customers' daily consumption in SGCC layout."""

    input_format = _SGCC_FORMAT
    input_columns = _SGCC_INPUT
    default_size, size_unit = 10_000, "customers"

    def generate(self, size, seed):
        return generate_sgcc(size, seed=seed)

    def read(self, path):
        return loaders.load_consumption_csv(path)


class TheftDetection(_SgccProduct):
    name = "theft-detection"
    kind = "application"
    title = "Electricity-theft identification"
    summary = ("Scores each customer's daily consumption for tampering (Jokar et al. attack "
               "traces) with gradient boosting; flags at the F1-tuned threshold.")
    output_columns = (
        Column("CONS_NO", "string", "customer number"),
        Column("theft_score", "float 0-1", "probability-like theft score"),
        Column("theft_flag", "0/1", "1 = inspect: score >= the card's operating threshold"),
    )

    def fit(self, frame, seed):
        model = build_theft_pipeline(seed).fit(_days(frame), _labels(frame, "FLAG"))
        return model, {"threshold": operating_threshold(model), "features": list(FEATURE_NAMES),
                       "estimator": "ConsumptionFeatures -> HistGradientBoostingClassifier, "
                                    "threshold tuned for F1 by 3-fold CV"}

    def evaluate(self, model, card, size, seed):
        frame, truth = generate_sgcc_with_truth(size, seed=seed)
        score = model.predict_proba(_days(frame))[:, 1]
        report = binary_report(frame["FLAG"], score, card["threshold"])
        flagged = score >= card["threshold"]
        report["recall_by_attack"] = {
            attack: round(float(flagged[truth["attack_type"] == attack].mean()), 4)
            for attack in sorted(set(truth["attack_type"]) - {""})}
        return report

    def predict(self, model, card, frame):
        score = model.predict_proba(_days(frame))[:, 1]
        return pd.DataFrame({"CONS_NO": frame["CONS_NO"], "theft_score": np.round(score, 6),
                             "theft_flag": (score >= card["threshold"]).astype(int)})


class AbnormalConsumption(_SgccProduct):
    name = "abnormal-consumption"
    kind = "application"
    title = "Identification of abnormal power consumption"
    summary = ("Unsupervised isolation-forest score on the consumption features: ranks "
               "customers for inspection where no theft has been confirmed yet.")
    output_columns = (
        Column("CONS_NO", "string", "customer number"),
        Column("anomaly_score", "float", "higher = more abnormal; 0 is the flag boundary"),
        Column("anomaly_flag", "0/1", "1 = among the most abnormal 8.5 % of the training population"),
    )

    def fit(self, frame, seed):
        model = build_anomaly_pipeline(seed).fit(_days(frame))
        return model, {"threshold": 0.0, "features": list(FEATURE_NAMES),
                       "estimator": "ConsumptionFeatures -> QuantileTransformer -> IsolationForest "
                                    "(contamination 0.085, SGCC's theft rate); labels unused"}

    def evaluate(self, model, card, size, seed):
        frame = generate_sgcc(size, seed=seed)
        return binary_report(frame["FLAG"], anomaly_score(model, _days(frame)), 0.0)

    def predict(self, model, card, frame):
        score = anomaly_score(model, _days(frame))
        return pd.DataFrame({"CONS_NO": frame["CONS_NO"], "anomaly_score": np.round(score, 6),
                             "anomaly_flag": (score >= 0).astype(int)})


class ChargeRisk(Product):
    name = "charge-risk"
    kind = "application"
    title = "Risk prediction of electricity charge"
    summary = "Probability that a customer's next bill goes unpaid beyond 30 days, from payment history."
    input_format = "csv, long layout (one row per customer and month)"
    input_columns = (
        Column("customer_id", "string", "customer number"),
        Column("customer_class", "residential|commercial|small_industry", "tariff class"),
        Column("month", "YYYY-MM", "billing month"),
        Column("billed_kwh", "float >= 0", "energy billed"),
        Column("amount_due", "float >= 0", "bill amount (CNY)"),
        Column("amount_paid", "float >= 0", "amount paid against this bill"),
        Column("days_late", "int >= 0", "days after the due date the payment arrived"),
        Column("DEFAULTED", "0/1, optional", "next bill unpaid > 30 days (needed to train only)"),
    )
    output_columns = (
        Column("customer_id", "string", "customer number"),
        Column("risk_score", "float 0-1", "probability of default on the next bill"),
        Column("risk_flag", "0/1", "1 = act (reminder, prepayment): score >= threshold"),
    )
    default_size, size_unit = 20_000, "customers"

    def generate(self, size, seed):
        return billing.generate_billing(size, seed=seed)

    def read(self, path):
        return loaders.load_billing_csv(path)

    @staticmethod
    def _xy(frame):
        features = billing_features(frame)
        label = None
        if billing.LABEL in frame.columns:
            label = frame.groupby("customer_id")[billing.LABEL].first().reindex(features.index).to_numpy()
        return features, label

    def fit(self, frame, seed):
        features, label = self._xy(frame)
        if label is None:
            raise AnalyticsError(f"training data needs the label column {billing.LABEL!r}")
        model = build_charge_risk_pipeline(seed).fit(features, label)
        return model, {"threshold": float(model[-1].best_threshold_),
                       "features": ["customer_class", *NUMERIC_FEATURES],
                       "estimator": "billing features -> HistGradientBoostingClassifier, F1-tuned threshold"}

    def evaluate(self, model, card, size, seed):
        features, label = self._xy(self.generate(size, seed))
        return binary_report(label, model.predict_proba(features)[:, 1], card["threshold"])

    def predict(self, model, card, frame):
        features, _ = self._xy(frame)
        score = model.predict_proba(features)[:, 1]
        return pd.DataFrame({"customer_id": features.index.to_numpy(), "risk_score": np.round(score, 6),
                             "risk_flag": (score >= card["threshold"]).astype(int)})


class TransformerOverload(Product):
    name = "transformer-overload"
    kind = "application"
    title = "Overload prediction of distribution transformer"
    summary = ("Probability that each transformer is overloaded (> 100 % of rating for >= 2 "
               "consecutive hours) on the day after the data ends.")
    input_format = "csv, long layout (one row per transformer and hour)"
    input_columns = (
        Column("transformer_id", "string", "transformer (station area) id"),
        Column("timestamp", "datetime", "start of the hour"),
        Column("load_kva", "float >= 0, blank = missing", "apparent power in the hour"),
        Column("temperature_c", "float", "air temperature"),
        Column("rated_kva", "float > 0", "rated capacity"),
    )
    output_columns = (
        Column("transformer_id", "string", "transformer id"),
        Column("target_date", "date", "the day predicted (day after the last day of data)"),
        Column("overload_probability", "float 0-1", "probability of an overload day"),
        Column("overload_flag", "0/1", "1 = prepare load transfer: probability >= threshold"),
    )
    default_size, size_unit = 300, "transformers (365 days each)"

    def generate(self, size, seed):
        return generate_transformer_load(size, seed=seed)

    def read(self, path):
        return loaders.load_transformer_csv(path)

    def fit(self, frame, seed):
        features, target = daily_features(frame)
        known = target >= 0
        model = build_overload_pipeline(seed).fit(features[known], target[known])
        return model, {"threshold": float(model[-1].best_threshold_), "features": list(OVERLOAD_FEATURES),
                       "estimator": "daily load/temperature features -> HistGradientBoostingClassifier, "
                                    "F1-tuned threshold"}

    def evaluate(self, model, card, size, seed):
        features, target = daily_features(self.generate(size, seed))
        known = target >= 0
        return binary_report(target[known], model.predict_proba(features[known])[:, 1], card["threshold"])

    def predict(self, model, card, frame):
        features, target = daily_features(frame)
        tomorrow = features[target < 0]
        score = model.predict_proba(tomorrow)[:, 1]
        index = tomorrow.index.to_frame(index=False)
        return pd.DataFrame({"transformer_id": index["transformer_id"],
                             "target_date": index["target_date"].dt.strftime("%Y-%m-%d"),
                             "overload_probability": np.round(score, 6),
                             "overload_flag": (score >= card["threshold"]).astype(int)})


class EquipmentFailure(Product):
    name = "equipment-failure"
    kind = "tool"
    title = "Equipment failure probability and life-cycle cost"
    summary = ("Next-year failure probability per asset, its discounted life-cycle cost "
               "(acquisition + operation + maintenance + failure + disposal), and a "
               "manufacturer ranking with blacklist (seed 002 §3.2).")
    input_format = "csv, asset register (one row per asset)"
    input_columns = tuple(Column(c, t, d) for c, t, d in (
        ("asset_id", "string", "asset id, unique"),
        ("asset_type", "|".join(equipment.ASSET_TYPES), "equipment type"),
        ("manufacturer", "string", "manufacturer code"),
        ("batch", "string", "production batch (manufacturer-year-lot)"),
        ("install_year", "int", "year put in service"),
        ("age_years", "float >= 0", "age at the evaluation date"),
        ("climate_zone", "|".join(equipment.CLIMATE_ZONES), "site climate"),
        ("load_factor", "float >= 0", "mean load / rating"),
        ("maintenance_count_3y", "int >= 0", "maintenance visits, last 3 years"),
        ("defect_count_3y", "int >= 0", "recorded defects, last 3 years"),
        ("critical_defects_3y", "int >= 0", "critical defects, last 3 years"),
        ("complaints_95598_1y", "int >= 0", "95598 customer complaints traced to the asset, last year"),
        ("failures_5y", "int >= 0", "failures in the last 5 years"),
        ("FAILED_NEXT_YEAR", "0/1, optional", "failed within the following year (needed to train only)"),
    ))
    output_columns = (
        Column("asset_id", "string", "asset id"),
        Column("failure_probability", "float 0-1", "probability of failure within a year"),
        Column("failure_flag", "0/1", "1 = prioritise for maintenance: probability >= threshold"),
        Column("lcc_total", "CNY", "discounted whole-life cost (sum of the five lcc_* parts)"),
        Column("lcc_acquisition|lcc_operation|lcc_maintenance|lcc_failure|lcc_disposal", "CNY", "LCC parts"),
        Column("equivalent_annual_cost", "CNY/year", "LCC as a level annual payment over the design life"),
        Column("remaining_cost", "CNY", "expected discounted cost from today to end of design life"),
    )
    default_size, size_unit = 30_000, "assets"

    def generate(self, size, seed):
        return equipment.generate_assets(size, seed=seed)

    def read(self, path):
        return loaders.load_assets_csv(path)

    def fit(self, frame, seed):
        model = build_failure_pipeline(seed).fit(frame, _labels(frame, equipment.LABEL))
        return model, {"threshold": float(model[-1].best_threshold_),
                       "features": [*CATEGORICAL, *NUMERIC],
                       "estimator": "one-hot + HistGradientBoostingClassifier, F1-tuned threshold; "
                                    "LCC over design life at 5 % discount"}

    def evaluate(self, model, card, size, seed):
        frame, quality = equipment.generate_assets_with_truth(size, seed=seed)
        report = binary_report(frame[equipment.LABEL], model.predict_proba(frame)[:, 1], card["threshold"])
        ranking = self.rank(model, frame)
        poor = set(quality[quality > 2.0].index)
        flagged = set(ranking.loc[ranking["blacklisted"], "manufacturer"])
        report["blacklist"] = sorted(flagged)
        report["poor_manufacturers_truth"] = sorted(poor)
        report["blacklist_recall"] = round(len(flagged & poor) / max(len(poor), 1), 4)
        report["blacklist_precision"] = round(len(flagged & poor) / max(len(flagged), 1), 4)
        return report

    def predict(self, model, card, frame):
        probability = model.predict_proba(frame)[:, 1]
        cost = life_cycle_cost(frame, probability)
        head = pd.DataFrame({"asset_id": frame["asset_id"].to_numpy(),
                             "failure_probability": np.round(probability, 6),
                             "failure_flag": (probability >= card["threshold"]).astype(int)})
        return pd.concat([head, cost.reset_index(drop=True)], axis=1)

    def rank(self, model, frame, by: str = "manufacturer") -> pd.DataFrame:
        """Ranking of manufacturers (or batches) with blacklist, LCC from the fitted model."""
        if by not in ("manufacturer", "batch"):
            raise AnalyticsError("rank by 'manufacturer' or 'batch'")
        return rank_groups(frame, by=by, lcc=life_cycle_cost(frame, model.predict_proba(frame)[:, 1]))


class CustomerPortrait(Product):
    name = "customer-portrait"
    kind = "application"
    title = "Customer portrait"
    summary = "Segments customers by consumption behaviour (Gaussian mixture) and describes each segment in words."
    input_format = _SGCC_FORMAT
    input_columns = _SGCC_INPUT
    output_columns = (
        Column("CONS_NO", "string", "customer number"),
        Column("segment", "int", "segment number (see the card's segments table)"),
        Column("segment_label", "string", "segment described in words"),
        Column("segment_probability", "float 0-1", "membership probability of that segment"),
    )
    default_size, size_unit = 10_000, "customers"

    def generate(self, size, seed):
        return generate_sgcc(size, seed=seed)

    def read(self, path):
        return loaders.load_consumption_csv(path)

    def fit(self, frame, seed):
        model = build_portrait_pipeline(seed=seed).fit(_days(frame))
        segments = describe_segments(model, _days(frame))
        return model, {"features": list(PORTRAIT_FEATURES), "segments": segments.to_dict(orient="records"),
                       "estimator": "behaviour features -> StandardScaler -> GaussianMixture (6, full)"}

    def evaluate(self, model, card, size, seed):
        frame, truth = generate_sgcc_with_truth(size, seed=seed)
        days = _days(frame)
        segment = model.predict(days)
        crosstab = pd.crosstab(segment, truth["customer_class"].to_numpy())
        scaled = model[:-1].transform(days)
        sample = np.random.default_rng(seed).choice(len(days), min(len(days), 3_000), replace=False)
        return {
            "n": int(len(days)),
            "class_purity": round(float(crosstab.max(axis=1).sum() / len(days)), 4),
            "adjusted_rand_vs_class": round(float(adjusted_rand_score(truth["customer_class"], segment)), 4),
            "silhouette": round(float(silhouette_score(scaled[sample], segment[sample])), 4),
            "segment_sizes": {int(k): int(v) for k, v in pd.Series(segment).value_counts().sort_index().items()},
        }

    def predict(self, model, card, frame):
        days = _days(frame)
        membership = model.predict_proba(days)
        segment = membership.argmax(axis=1)
        labels = {row["segment"]: row["label"] for row in card["segments"]}
        return pd.DataFrame({"CONS_NO": frame["CONS_NO"], "segment": segment,
                             "segment_label": [labels.get(s, "unseen in training") for s in segment],
                             "segment_probability": np.round(membership.max(axis=1), 6)})


PRODUCTS: tuple[Product, ...] = (TheftDetection(), AbnormalConsumption(), ChargeRisk(),
                                 TransformerOverload(), EquipmentFailure(), CustomerPortrait())
