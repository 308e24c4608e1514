#!/usr/bin/python3
"""Soak test (`make soak`, outside CI): mixed load against one bus for a bounded time.

Echo services that sometimes answer with an error, sometimes not at all (the bus's reply_timeout
answers for them) and sometimes hang up with calls pending; callers that count every reply; match
rules, names and connections churning; broadcasts. Passes when every method call got exactly one
reply or error, and the bus's RSS over the second half stays within a small margin of the first
half's (no growth with time).

Usage: soak.py DAEMON [SECONDS]      (standard library only)
"""

import os
import random
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402  (the wire helpers and the bus launcher)
from hostile import ERROR, METHOD_CALL, METHOD_RETURN, NO_REPLY_EXPECTED, SIGNAL, Closed, Connection, build  # noqa: E402

REPLY_TIMEOUT_MS = 1000
SERVICE = "org.busgate.Soak"


class Service(threading.Thread):
    """Owns SERVICE (queued behind earlier owners); answers Echo; now and then hangs up and comes back."""

    def __init__(self, bus, stop, stats):
        super().__init__(daemon=True)
        self.bus, self.stop, self.stats = bus, stop, stats

    def run(self):
        rng = random.Random(os.getpid() ^ id(self))
        while not self.stop.is_set():
            connection = Connection(self.bus.path)
            connection.call("RequestName", "su", (SERVICE, 0))
            life = time.monotonic() + rng.uniform(1, 5)
            try:
                while time.monotonic() < life and not self.stop.is_set():
                    for message in connection.messages(0.05):
                        if message["type"] != METHOD_CALL or message.get("member") != "Echo":
                            continue
                        roll = rng.random()
                        if roll < 0.02:
                            self.stats["ignored"] += 1  # the bus's reply_timeout answers this one
                            continue
                        fields = {"destination": message["sender"], "reply_serial": message["serial"]}
                        if roll < 0.10:
                            fields["error"] = "org.busgate.Soak.Error"
                            kind = ERROR
                        else:
                            kind = METHOD_RETURN
                        connection.sock.sendall(build(kind, connection.next_serial(), fields, "s",
                                                      (message["args"][0] if message["args"] else "",)))
            except (Closed, OSError):
                pass
            self.stats["service restarts"] += 1
            connection.close()


class Caller(threading.Thread):
    """Calls Echo with up to 16 calls in flight; every serial must be answered exactly once."""

    def __init__(self, bus, stop, stats):
        super().__init__(daemon=True)
        self.bus, self.stop, self.stats = bus, stop, stats
        self.problems = []

    def run(self):
        rng = random.Random(id(self))
        connection = Connection(self.bus.path)
        outstanding = {}
        answered = set()
        while not self.stop.is_set() or outstanding:
            if self.stop.is_set() and time.monotonic() > self.drain_deadline:
                self.problems.append("%d calls never answered" % len(outstanding))
                break
            while not self.stop.is_set() and len(outstanding) < 16:
                text = "x" * rng.choice((0, 10, 1000, 30000))
                serial = connection.send_call("Echo", "s", (text,), destination=SERVICE, path="/soak",
                                              interface="org.busgate.Soak")
                outstanding[serial] = time.monotonic()
                self.stats["calls"] += 1
            for message in connection.messages(0.05):
                serial = message.get("reply_serial")
                if serial is None:
                    continue
                if serial in answered or serial not in outstanding:
                    self.problems.append("serial %d answered twice" % serial)
                    continue
                del outstanding[serial]
                answered.add(serial)
                kind = "replies" if message["type"] == METHOD_RETURN else message.get("error", "error")
                self.stats[kind] += 1
        connection.close()


class Churner(threading.Thread):
    """Connections that come and go with match rules, names and broadcasts."""

    def __init__(self, bus, stop, stats):
        super().__init__(daemon=True)
        self.bus, self.stop, self.stats = bus, stop, stats
        self.problems = []

    def run(self):
        rng = random.Random(id(self))
        while not self.stop.is_set():
            try:
                connection = Connection(self.bus.path)
                for index in range(rng.randint(1, 20)):
                    rule = "type='signal',interface='org.busgate.Soak',arg0='%d'" % rng.randint(0, 50)
                    connection.call("AddMatch", "s", (rule,))
                    if index % 3 == 0:
                        connection.call("RemoveMatch", "s", (rule,))
                    name = "org.busgate.Soak.Churn%d" % rng.randint(0, 20)
                    connection.call("RequestName", "su", (name, 4))
                    if index % 2:
                        connection.call("ReleaseName", "s", (name,))
                    connection.sock.sendall(build(SIGNAL, connection.next_serial(),
                                                  {"path": "/soak", "interface": "org.busgate.Soak",
                                                   "member": "Tick"}, "s", (str(rng.randint(0, 50)),),
                                                  flags=NO_REPLY_EXPECTED))
                    self.stats["churn operations"] += 1
                connection.messages(0.01)
                connection.close()
                self.stats["churn connections"] += 1
            except (Closed, OSError, TimeoutError) as error:
                self.problems.append("churn: %r" % error)


class Stats(dict):
    def __missing__(self, key):
        return 0


def main():
    daemon = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 180
    hostile.LIMITS["reply_timeout"] = REPLY_TIMEOUT_MS
    hostile.LIMITS["max_replies_per_connection"] = 128
    stats = Stats()
    failures = []
    with tempfile.TemporaryDirectory(prefix="busgate-soak-") as work:
        bus = hostile.Bus(daemon, work)
        stop = threading.Event()
        services = [Service(bus, stop, stats) for _ in range(2)]
        callers = [Caller(bus, stop, stats) for _ in range(4)]
        churners = [Churner(bus, stop, stats) for _ in range(2)]
        for thread in services + callers + churners:
            thread.start()
        samples = []
        started = time.monotonic()
        while time.monotonic() - started < seconds and bus.alive():
            time.sleep(1)
            samples.append(bus.rss_kb())
        drain = time.monotonic() + REPLY_TIMEOUT_MS / 1000 + 5
        for caller in callers:
            caller.drain_deadline = drain
        stop.set()
        for caller in callers:
            caller.join(REPLY_TIMEOUT_MS / 1000 + 10)
        for thread in services + churners:
            thread.join(10)
        alive = bus.alive()
        bus.stop()
    if not alive:
        failures.append("the bus died")
    for thread in callers + churners:
        failures += thread.problems[:5]
    # Skip the warm-up (first tenth); compare the last third's peak with the middle third's.
    steady = samples[len(samples) // 10:]
    third = max(len(steady) // 3, 1)
    middle, last = max(steady[third:2 * third] or [0]), max(steady[-third:] or [0])
    allowed = middle * 1.10 + 2048
    if last > allowed:
        failures.append("RSS grew: %d KiB in the middle third, %d KiB in the last" % (middle, last))
    answered = stats["replies"] + sum(value for key, value in stats.items() if key.startswith("org."))
    if answered != stats["calls"]:
        failures.append("%d calls, %d answered" % (stats["calls"], answered))
    print("soak %s for %.0fs: %s" % (os.path.basename(daemon), seconds,
                                      ", ".join("%s %d" % item for item in sorted(stats.items()))))
    print("RSS KiB: start %d, middle-third peak %d, last-third peak %d, max %d" % (
        samples[0] if samples else 0, middle, last, max(samples or [0])))
    for failure in failures:
        print("FAIL: " + failure)
    print("soak: %s" % ("passed" if not failures else "FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
