#!/usr/bin/env python3
"""The listener's memory under a steady stream of adverts (issue 18 item 6).

Run as root: ``PYTHONPATH=. .venv-newest/bin/python tests/bench/bench_listen.py``
(``--rate 10000 --seconds 60`` by default).  Builds two namespaces joined by
a veth, runs ``vrrpfw.listen.listener.listen`` in one for SECONDS while the other
writes VRRPv2 adverts (two routers, 192.0.2.2 and 192.0.2.3) with a packet
socket at RATE per second, and prints what the listener heard, its peak RSS
(ru_maxrss) before and after the listen, and, with ``--tracemalloc``, the
peak of Python allocations during it (slower: the listener then keeps up
with less).  Every packet stays between the namespaces it creates; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from netns import pair  # noqa: E402

from vrrpfw.listen.packet import encode_frame, encode_ipv4, encode_vrrp  # noqa: E402
from vrrpfw.prove import netns as _netns  # noqa: E402

LISTENER = """
import json, resource, sys, tracemalloc
from vrrpfw.listen.listener import listen
iface, secs, trace = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if trace:
    tracemalloc.start()
r = listen([iface], secs, families=("ipv4",), read_firewall_counters=False,
           ready=lambda: print("ready", flush=True))
peak = tracemalloc.get_traced_memory()[1] if trace else None
doc = r.to_json()
rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_before_kb": rss_before, "rss_peak_kb": rss_peak,
                  "tracemalloc_peak": peak, "exit_code": doc["exit_code"],
                  "capture_overflow": doc.get("capture_overflow"),
                  "sources": [(s["src"], s["verdict"], s["wire"], s["delivered"]) for s in doc["sources"]]}))
"""

SENDER = """
import socket, sys, time
iface, rate, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
frames = [bytes.fromhex(x) for x in sys.stdin.read().split()]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
burst = max(1, rate // 100)
start = time.monotonic()
sent = 0
while True:
    now = time.monotonic() - start
    if now >= secs:
        break
    due = int(now * rate) + burst
    while sent < due:
        try:
            s.send(frames[sent % len(frames)])
        except BlockingIOError:
            time.sleep(0.0005)
            continue
        sent += 1
    time.sleep(0.005)
print(f"{sent} {time.monotonic() - start:.2f}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=10000, help="adverts per second (default 10000)")
    ap.add_argument("--seconds", type=float, default=60.0, help="listen window (default 60)")
    ap.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    args = ap.parse_args()
    frames = [encode_frame(encode_ipv4(encode_vrrp(2, vrid, 100, ["192.0.2.100"], 1), src, "224.0.0.18"))
              for vrid, src in ((51, "192.0.2.2"), (52, "192.0.2.3"))]
    with pair("vbl") as p:
        proc = p.host.ns.popen([sys.executable, "-c", LISTENER, p.host_if, str(args.seconds),
                                "1" if args.tracemalloc else "0"])
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"listener did not start: {proc.stderr.read() if proc.stderr else ''}")
            started = time.monotonic()
            sent = p.peer.run(sys.executable, "-c", SENDER, p.peer_if, str(args.rate), str(args.seconds),
                              stdin="\n".join(f.hex() for f in frames),
                              timeout=args.seconds + 120).stdout.split()
            out, err = proc.communicate(timeout=args.seconds + 300)
        finally:
            _netns.release(proc)
        if proc.returncode != 0:
            raise SystemExit(f"listener failed: {err}")
        result = json.loads(out.strip().splitlines()[-1])
        result["sent"], result["send_seconds"] = int(sent[0]), float(sent[1])
        result["rate_asked"], result["listen_seconds"] = args.rate, args.seconds
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
