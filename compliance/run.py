"""Start the Autobahn fuzzing server, run statews through it, print the summary.

    python compliance/run.py                       # groups 1-7 and 10 (a few minutes)
    python compliance/run.py --cases '9.*'         # one group (nothing excluded)
    python compliance/run.py --cases '*' --exclude-cases  # everything (~10 minutes)

The slow groups (9, 12, 13) are excluded only when ``--cases`` is not given.

Needs ``../shared/autobahn/setup.sh`` to have run once on the machine. Reports go to
``compliance/reports/`` (not committed); the summary is printed and written to
``compliance/reports/summary.txt``. Exit status 1 if any case FAILED or is NON-STRICT.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AUTOBAHN = HERE.parent.parent / "shared" / "autobahn"


def wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"fuzzing server did not listen on {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--cases", nargs="+", default=["*"])
    parser.add_argument("--exclude-cases", nargs="*", default=None)
    parser.add_argument("--autobahn", type=Path, default=AUTOBAHN)
    parser.add_argument("--agent", default="statews")
    parser.add_argument("--outdir", type=Path, default=HERE / "reports")
    args = parser.parse_args()
    if args.exclude_cases is None:  # the slow groups, unless cases were chosen
        args.exclude_cases = ["9.*", "12.*", "13.*"] if args.cases == ["*"] else []

    outdir = args.outdir
    outdir.mkdir(exist_ok=True)
    server_cmd = [
        "bash",
        str(args.autobahn / "run_fuzzingserver.sh"),
        "--port",
        str(args.port),
        "--outdir",
        str(outdir),
        "--cases",
        *args.cases,
        "--timeout",
        "3000",
    ]
    if args.exclude_cases:
        server_cmd += ["--exclude-cases", *args.exclude_cases]
    with open(outdir / "server.log", "w") as log:
        server = subprocess.Popen(server_cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(args.port, time.monotonic() + 60)
        client = [
            sys.executable,
            str(HERE / "autobahn_client.py"),
            "--url",
            f"ws://127.0.0.1:{args.port}",
            "--agent",
            args.agent,
        ]
        subprocess.run(client, check=True, timeout=3000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = subprocess.run(
        [sys.executable, str(args.autobahn / "summarize.py"), str(outdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    (outdir / "summary.txt").write_text(summary.stdout)
    print(summary.stdout)
    return 1 if count_bad(outdir / "index.json", args.agent) else 0


def count_bad(index_path: Path, agent: str) -> int:
    """Cases whose verdict is neither OK nor INFORMATIONAL/UNIMPLEMENTED, or whose
    closing behaviour was not OK."""
    cases = json.loads(index_path.read_text())[agent]
    accepted = {"OK", "INFORMATIONAL", "UNIMPLEMENTED"}
    return sum(
        1
        for result in cases.values()
        if result["behavior"] not in accepted or result["behaviorClose"] not in accepted
    )


if __name__ == "__main__":
    sys.exit(main())
