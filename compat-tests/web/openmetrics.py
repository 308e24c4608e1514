#!/usr/bin/python3
"""Parses OpenMetrics text from standard input, checking what test-web relies on: every sample belongs to a
family announced by # TYPE and # HELP, counter samples end in _total, histogram buckets are cumulative and
end at +Inf equal to _count, and the text ends with # EOF. Prints the samples as a JSON object
{"name{labels}": value}; exits 1 with the reason on stderr if the text is malformed."""
import json
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def fail(reason):
    print(f"malformed OpenMetrics: {reason}", file=sys.stderr)
    sys.exit(1)


text = sys.stdin.read()
if not text.endswith("# EOF\n"):
    fail("does not end with # EOF")
types, helps, samples = {}, set(), {}
for line in text.splitlines()[:-1]:
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3)
        if kind not in ("counter", "gauge", "histogram", "info", "stateset", "unknown", "summary", "gaugehistogram"):
            fail(f"unknown type {kind}")
        types[name] = kind
    elif line.startswith("# HELP "):
        helps.add(line.split(" ", 3)[2])
    elif line.startswith("#"):
        fail(f"unexpected comment {line!r}")
    else:
        match = SAMPLE.match(line)
        if not match:
            fail(f"bad sample line {line!r}")
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        family = next((f for f in types if name == f or (name.startswith(f + "_") and name[len(f) + 1:] in
                                                         ("total", "bucket", "count", "sum", "created"))), None)
        if family is None:
            fail(f"sample {name} has no # TYPE")
        if family not in helps:
            fail(f"family {family} has no # HELP")
        if types[family] == "counter" and not name.endswith("_total"):
            fail(f"counter sample {name} does not end in _total")
        if types[family] == "counter" and value < 0:
            fail(f"negative counter {name}")
        samples[name + labels] = value
for family, kind in types.items():
    if kind != "histogram":
        continue
    buckets = [(key, value) for key, value in samples.items() if key.startswith(family + "_bucket{")]
    values = [value for _, value in buckets]
    if values != sorted(values):
        fail(f"{family} buckets are not cumulative")
    if not buckets or 'le="+Inf"' not in buckets[-1][0] or buckets[-1][1] != samples.get(family + "_count"):
        fail(f"{family} does not end with an +Inf bucket equal to _count")
print(json.dumps(samples))
