"""How long one classification takes: `taxonomy.classifier.Classifier.classify` on a 100-character
report, in-process (no database, no HTTP). The target: well under 5 ms a call (~0.1 ms on a
laptop), so classification never matters next to a request's database work.

Moved here from the test suite (timing belongs in bench/, not in tests).
"""

from __future__ import annotations

import argparse
import time

from benchlib import emit, environment, log, percentiles_us

from taxonomy.catalogue import load_default_catalogue
from taxonomy.classifier import Classifier

TARGET_US = 5000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 calls instead of 5,000")
    args = parser.parse_args()
    runs = 300 if args.quick else 5000
    classifier = Classifier(load_default_catalogue())
    text = ("小区楼道里有人给电动车充电，" * 10)[:100]
    classifier.classify(text)  # warm-up
    log(f"classifying a {len(text)}-character text {runs} times")
    samples: list[int] = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        classifier.classify(text)
        samples.append(time.perf_counter_ns() - t0)
    mean_us = sum(samples) / len(samples) / 1000.0
    emit(
        {
            "bench": "classifier",
            "environment": environment(),
            "runs": runs,
            "text_chars": len(text),
            "mean_us": round(mean_us, 1),
            **percentiles_us(samples, 50, 99),
            "target_mean_us": TARGET_US,
            "meets_target": mean_us < TARGET_US,
        }
    )


if __name__ == "__main__":
    main()
