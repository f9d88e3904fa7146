"""Benchmark `retro timeline` end to end on a synthetic bundle.

Prints events per second and peak RSS. Targets on 2 cores: at least 50k events/s and peak
RSS under 500 MB for a 100k-event bundle.

    python bench/timeline.py [--events 100000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--format", default="json", choices=["json", "md", "csv"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = synth.write(Path(tmp) / "bundle", args.events)
        retro = Path(sys.executable).parent / "retro"
        start = time.perf_counter()
        done = subprocess.run(
            [str(retro), "timeline", "--bundle", str(bundle), "--format", args.format],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"retro timeline failed: {done.stderr.strip()}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rate = args.events / elapsed
    print(
        f"retro timeline, {args.events:,} events ({args.format}): {elapsed:.2f} s, "
        f"{rate:,.0f} events/s (target >= 50,000), peak RSS {peak_mb:.0f} MB (target < 500)"
    )


if __name__ == "__main__":
    main()
