"""Seeds -> one row per configuration: mean, spread and 95 % intervals, and the gain over the
control paired by seed, so a reader sees whether a gain is more than seed noise."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from scipy import stats

LEVEL = 0.95
CONFIG_COLUMNS = (
    "kind",
    "enhancement",
    "temperature",
    "alpha",
    "seeds",
    "epochs",
    "val_mean",
    "val_std",
    "val_ci",
    "test_mean",
    "test_std",
    "test_ci",
    "gain_test_mean",
    "gain_test_ci",
    "gain_pairs",
    "gain_verdict",
)


@dataclass(frozen=True)
class Interval:
    """Mean and Student-t interval of a sample; with one value there is no interval."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    def text(self) -> str:
        if self.n < 2:
            return f"{self.n} seed" if self.n == 1 else "-"
        return f"[{self.low:.4f}, {self.high:.4f}]"


def interval(values: list[float]) -> Interval:
    """t-interval at LEVEL over the values' sample standard deviation (n - 1); values that
    are missing (NaN) do not count."""
    values = [v for v in values if math.isfinite(v)]
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf((1 + LEVEL) / 2, n - 1) * std / math.sqrt(n)
    return Interval(mean, std, mean - half, mean + half, n)


def verdict(gain: Interval) -> str:
    """Whether the paired gain is told apart from zero at LEVEL (never from one seed)."""
    if gain.n < 2:
        return f"{gain.n} seed" if gain.n == 1 else "no control"
    if gain.low > 0:
        return "gain"
    return "loss" if gain.high < 0 else "within noise"


def config_rows(rows: list[dict]) -> list[dict]:
    """Per-run ablation rows (kind, enhancement, temperature, alpha, seed, epochs, val_top1,
    test_top1, gain_test) -> one row per configuration over its seeds. The gain is paired:
    each seed's student against the control of the same seed. Runs repeating a seed (a grid
    point drawn twice) are averaged first: n counts seeds, not runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["kind"] in ("student", "control"):
            groups[configuration(r)].append(r)
    out = []
    for (kind, enhancement, _, _), runs in groups.items():
        temperature, alpha = runs[0]["temperature"], runs[0]["alpha"]
        val, test, gain = (interval(per_seed(runs, k)) for k in ("val_top1", "test_top1",
                                                                  "gain_test"))  # fmt: skip
        paired = kind == "student"
        out.append({
            "kind": kind, "enhancement": enhancement, "temperature": temperature,
            "alpha": alpha, "seeds": ",".join(str(k) for k in sorted({r["seed"] for r in runs})),
            "epochs": sum(r["epochs"] for r in runs) / len(runs),
            "val_mean": val.mean, "val_std": val.std, "val_ci": val.text(),
            "test_mean": test.mean, "test_std": test.std, "test_ci": test.text(),
            "gain_test_mean": gain.mean if paired else math.nan,
            "gain_test_ci": gain.text() if paired else "",
            "gain_pairs": gain.n if paired else 0,
            "gain_verdict": verdict(gain) if paired else "",
            "_gain": gain,
        })  # fmt: skip
    out.sort(key=lambda r: (r["kind"] != "control", not math.isfinite(r["val_mean"]),
                            -r["val_mean"] if math.isfinite(r["val_mean"]) else 0))  # fmt: skip
    return out


def per_seed(runs: list[dict], key: str) -> list[float]:
    """`key` of each seed: the mean over that seed's runs (NaN where none has it)."""
    seeds: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        if math.isfinite(r[key]):
            seeds[r["seed"]].append(r[key])
    return [sum(v) / len(v) for v in seeds.values()]


def configuration(row: dict) -> tuple:
    """What a row's seeds share: kind, teacher enhancement, temperature and alpha."""
    return (row["kind"], row["enhancement"], _key(row["temperature"]), _key(row["alpha"]))


def _key(value: float) -> float | None:
    """Configurations match on T and alpha as the tags carry them (4 significant digits);
    the control has no temperature (NaN never equals itself, so it becomes None)."""
    return None if math.isnan(value) else float(f"{value:.4g}")
