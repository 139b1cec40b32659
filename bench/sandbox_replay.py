"""Replays the CRM requests of a month-end against fresh sandboxes, in this process: CPU per request kind, and a
digest of every answer. Prints figures.

    scripts/with-services.sh .venv/bin/python bench/health_profile.py --sandbox --no-profile --dump /tmp/hp
    .venv/bin/python bench/sandbox_replay.py /tmp/hp/sandbox-requests.jsonl [--rounds 3]

health_profile.py --sandbox --dump records every request the sandboxes answered during a month-end (with the
org each went to: platform, profile, seed, size, clock). This script builds those orgs again and sends each one
the same requests in the same order through the server's own dispatch (no HTTP, no database, no app): what the
sandboxes cost, without the minutes of building the data set. The answers' digest is the same before and after
a change of the serving code exactly when every answer is the same byte for byte, so a speed-up is checked
against the wire format as it goes. Sessions are the replaying sandbox's own (logins are not replayed), and
HubSpot's rate-limit windows are not enforced.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_sandbox import HubSpotSandbox, SalesforceSandbox  # noqa: E402 - after the path
from crm_sandbox.server import Request  # noqa: E402

CLASSES = {"salesforce": SalesforceSandbox, "hubspot": HubSpotSandbox}
SKIPPED = ("login_soap", "oauth_token", "oauth")  # their answers carry fresh tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requests", help="sandbox-requests.jsonl written by health_profile.py --sandbox --dump")
    parser.add_argument("--rounds", type=int, default=1, help="replays, each on fresh sandboxes (1)")
    args = parser.parse_args()
    lines = [json.loads(line) for line in Path(args.requests).read_text().splitlines() if line.strip()]

    cpu: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    digests = []
    for _ in range(args.rounds):
        servers: dict[tuple, object] = {}
        digest = hashlib.sha256()
        for line in lines:
            key = (line["platform"], line["profile"], line["seed"], line["size"], line["as_of"])
            server = servers.get(key)
            if server is None:
                as_of = datetime.fromtimestamp(line["as_of"] / 1000, UTC)
                server = CLASSES[line["platform"]](
                    profile=line["profile"], seed=line["seed"], size=line["size"], as_of=as_of
                )
                if server.model.as_of != line["as_of"]:
                    raise SystemExit(f"could not rebuild the org of {key}: its clock is {server.model.as_of}")
                servers[key] = server
            headers = dict(line["headers"])
            if line["platform"] == "salesforce":
                headers["authorization"] = f"Bearer {server.session_id}"
            else:
                headers["authorization"] = f"Bearer {server.access_token}"
            req = Request(line["method"], line["path"], line["query"], headers, line["body"].encode())
            kind = server.classify(req)
            if kind in SKIPPED:
                continue
            t0 = time.process_time()
            response, _ = server.dispatch(req)
            cpu[line["platform"], line["size"], kind].append(time.process_time() - t0)
            digest.update(f"{kind} {response.status}\n".encode() + response.body)
        digests.append(digest.hexdigest())

    print(f"{len(lines)} requests recorded; {args.rounds} round(s); CPU seconds per round")
    print(f"{'platform':<11} {'org size':>10} {'request kind':<16} {'n':>6} {'CPU s':>8} {'ms each':>9}")
    total = 0.0
    for (platform, size, kind), times in sorted(cpu.items()):
        per_round = sum(times) / args.rounds
        total += per_round
        n = len(times) // args.rounds
        print(f"{platform:<11} {size:>10,} {kind:<16} {n:>6} {per_round:>8.2f} {1000 * per_round / max(n, 1):>9.1f}")
    print(f"{'total':<39} {'':>6} {total:>8.2f}")
    print("answers digest: " + (digests[0] if len(set(digests)) == 1 else f"DIFFERS between rounds: {digests}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
