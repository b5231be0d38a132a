"""Run every benchmark in bench/ (files named bench_*.py), one after another.

Each benchmark compares Ops Console with a named peer in the same run and prints ratios.
`make bench` calls this; `make bench BENCH=health` runs only bench_health.py. Scripts are found
by name (bench_*.py: one file per benchmark; what they share is in harness.py, and their helper
scripts, settings and URLconfs have other names), so a new one runs without being listed here;
bench_hostile.py (mixed load with hostile ingest) runs two 60 s phases,
`BENCH_HOSTILE_SECONDS=20` shortens them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = os.environ.get("BENCH", "")
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if s.stem == f"bench_{only}"]
        if not scripts:
            print(f"no benchmark named bench_{only}.py in bench/", file=sys.stderr)
            return 2
    failed = []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False)
        if result.returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\n{len(scripts)} benchmark(s) finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
