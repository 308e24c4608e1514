#!/usr/bin/python3
"""Hostile and broken clients against a bus daemon (busgate, or dbus-daemon for comparison).

Each case runs an offender while a probe pair keeps talking through the bus: connection A calls the
driver (GetId) and sends numbered unicast signals to connection B. A case passes when the probe's
calls all got replies within PROBE_BOUND seconds, B received every numbered signal in order, the bus's
VmRSS and open fds stayed within the bounds the configured limits imply, and the offender got what
dbus-daemon 1.14 gives it (the expected outcomes below were measured against /usr/bin/dbus-daemon
with this file's configuration; run `hostile.py /usr/bin/dbus-daemon` to see them again).

Usage: hostile.py DAEMON [CASE...]        (standard library only; prints TAP-like lines and a summary)
"""

import array
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

PROBE_BOUND = 2.0  # seconds a probe call may take (generous: the suite also runs under ASan)
LIMITS = {
    "auth_timeout": 1500,
    "max_incomplete_connections": 16,
    "max_message_size": 1 << 20,
    "max_message_unix_fds": 16,
    "max_incoming_unix_fds": 64,
    "max_incoming_bytes": 4 << 20,
    "max_outgoing_bytes": 4 << 20,
    "max_outgoing_unix_fds": 64,
    "pending_fd_timeout": 1500,
    "max_connections_per_user": 256,
    "max_completed_connections": 2048,
    "max_names_per_connection": 64,
    "max_match_rules_per_connection": 64,
    "max_replies_per_connection": 32,
}
# Growth of the bus's RSS over its idle size that any case may cause: what the limits allow one
# offender to park in the bus (its outgoing queue) plus allocator slack.
RSS_SLACK_KB = (LIMITS["max_outgoing_bytes"] >> 10) * 4 + 48 * 1024

# ---------------------------------------------------------------------------------------------
# The wire format, as little of it as the cases need.

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 1
FIELD_TYPES = {1: "o", 2: "s", 3: "s", 4: "s", 5: "u", 6: "s", 7: "s", 8: "g", 9: "u"}
FIELD_CODES = {"path": 1, "interface": 2, "member": 3, "error": 4, "reply_serial": 5,
               "destination": 6, "sender": 7, "signature": 8, "unix_fds": 9}


def pad(buf, alignment):
    buf.extend(b"\0" * (-len(buf) % alignment))


def put(buf, code, value):
    if code in "so":
        pad(buf, 4)
        data = value.encode()
        buf.extend(struct.pack("<I", len(data)) + data + b"\0")
    elif code == "g":
        data = value.encode()
        buf.extend(bytes([len(data)]) + data + b"\0")
    elif code == "u":
        pad(buf, 4)
        buf.extend(struct.pack("<I", value))
    else:
        raise ValueError(code)


def build(kind, serial, fields, signature="", args=(), flags=0, body=None):
    if body is None:
        body = bytearray()
        for code, value in zip(signature, args):
            put(body, code, value)
    if signature:
        fields = dict(fields, signature=signature)
    header = bytearray(struct.pack("<cBBBII", b"l", kind, flags, 1, len(body), serial))
    array_ = bytearray()
    for name, value in fields.items():
        code = FIELD_CODES[name]
        pad(array_, 8)
        array_.append(code)
        put(array_, "g", FIELD_TYPES[code])
        # values are aligned relative to the message start, which is 16 bytes before the array
        misalign = (16 + len(array_)) % 4
        if FIELD_TYPES[code] in "sou" and misalign:
            array_.extend(b"\0" * (4 - misalign))
        if FIELD_TYPES[code] == "g":
            put(array_, "g", value)
        elif FIELD_TYPES[code] == "u":
            array_.extend(struct.pack("<I", value))
        else:
            data = value.encode()
            array_.extend(struct.pack("<I", len(data)) + data + b"\0")
    header.extend(struct.pack("<I", len(array_)))
    header.extend(array_)
    pad(header, 8)
    return bytes(header + body)


def call_message(serial, destination, member, signature="", args=(), path="/org/freedesktop/DBus",
                 interface="org.freedesktop.DBus", flags=0, extra=None):
    fields = {"path": path, "member": member}
    if interface:
        fields["interface"] = interface
    if destination:
        fields["destination"] = destination
    fields.update(extra or {})
    return build(METHOD_CALL, serial, fields, signature, args, flags)


def parse(data):
    """Returns (message dict, bytes used) or (None, 0) when `data` holds no complete message."""
    if len(data) < 16:
        return None, 0
    _, kind, flags, _, body_length, serial, fields_length = struct.unpack_from("<cBBBIII", data)
    start = 16 + fields_length
    total = start + (-start % 8) + body_length
    if len(data) < total:
        return None, 0
    message = {"type": kind, "flags": flags, "serial": serial}
    offset = 16
    while offset < start:
        offset += -offset % 8
        code = data[offset]
        sig_length = data[offset + 1]
        sig = data[offset + 2:offset + 2 + sig_length].decode()
        offset += 3 + sig_length
        if sig in ("s", "o"):
            offset += -offset % 4
            (length,) = struct.unpack_from("<I", data, offset)
            value = data[offset + 4:offset + 4 + length].decode()
            offset += 5 + length
        elif sig == "g":
            length = data[offset]
            value = data[offset + 1:offset + 1 + length].decode()
            offset += 2 + length
        elif sig == "u":
            offset += -offset % 4
            (value,) = struct.unpack_from("<I", data, offset)
            offset += 4
        else:
            raise ValueError("header field of type " + sig)
        for name, number in FIELD_CODES.items():
            if number == code:
                message[name] = value
    body = data[start + (-start % 8):total]
    args = []
    position = 0
    for code in message.get("signature", ""):
        if code in "so":
            position += -position % 4
            (length,) = struct.unpack_from("<I", body, position)
            args.append(body[position + 4:position + 4 + length].decode())
            position += 5 + length
        elif code in "ub":
            position += -position % 4
            args.append(struct.unpack_from("<I", body, position)[0])
            position += 4
        else:
            break
    message["args"] = args
    return message, total


class Closed(Exception):
    pass


class Connection:
    """One raw client connection: EXTERNAL authentication, Hello, calls and replies."""

    def __init__(self, path, unix_fds=False, hello=True, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:
                # The listen backlog is full until the bus accepts what came before (a timed socket is
                # non-blocking, and AF_UNIX does not wait for room): try again, within the timeout.
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.buffer = bytearray()
        self.serial = 0
        self.unique_name = None
        self.queued = []
        if hello is not None:
            self.authenticate(unix_fds)
        if hello:
            reply = self.call("Hello")
            if reply["type"] != METHOD_RETURN:
                raise Closed("Hello refused: %s" % reply.get("error"))
            self.unique_name = reply["args"][0]

    def authenticate(self, unix_fds=False):
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        if not self.line().startswith(b"OK "):
            raise Closed("authentication refused")
        if unix_fds:
            self.sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
            if self.line() != b"AGREE_UNIX_FD":
                raise Closed("no fd passing")
        self.sock.sendall(b"BEGIN\r\n")

    def line(self):
        while b"\r\n" not in self.buffer:
            self.fill()
        line, _, rest = bytes(self.buffer).partition(b"\r\n")
        self.buffer = bytearray(rest)
        return line

    def fill(self):
        data, ancillary, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(253 * 4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % 4])
                for fd in fds:
                    os.close(fd)
        if not data:
            raise Closed("closed by the bus")
        self.buffer.extend(data)

    def next_serial(self):
        self.serial += 1
        return self.serial

    def send_call(self, member, signature="", args=(), destination="org.freedesktop.DBus", **kw):
        serial = self.next_serial()
        self.sock.sendall(call_message(serial, destination, member, signature, args, **kw))
        return serial

    def call(self, member, signature="", args=(), destination="org.freedesktop.DBus", timeout=5.0, **kw):
        return self.reply_to(self.send_call(member, signature, args, destination, **kw), timeout)

    def messages(self, timeout):
        """Every complete message that arrives within `timeout` (at least what is buffered)."""
        deadline = time.monotonic() + timeout
        out = self.queued
        self.queued = []
        arrived = False
        while True:
            message, used = parse(self.buffer)
            if message:
                del self.buffer[:used]
                out.append(message)
                arrived = True
                continue
            # once something came, take only what is already there
            left = 0 if arrived else max(deadline - time.monotonic(), 0)
            poller = select.poll()  # select() cannot watch fds past 1023
            poller.register(self.sock, select.POLLIN)
            if not poller.poll(left * 1000):
                return out
            self.fill()

    def reply_to(self, serial, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.queued):
                if message.get("reply_serial") == serial:
                    return self.queued.pop(index)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply to serial %d" % serial)
            arrived = self.messages(min(left, 0.05))  # it empties self.queued first
            self.queued.extend(arrived)

    def closed_within(self, timeout):
        """True if the bus closes this connection within `timeout` (anything it sends is read)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.messages(min(0.05, max(deadline - time.monotonic(), 0.001)))
        except (Closed, ConnectionResetError, BrokenPipeError):
            return True
        return False

    def close(self):
        self.sock.close()


def error_of(message):
    return message.get("error") if message["type"] == ERROR else None


# ---------------------------------------------------------------------------------------------
# The bus under test and the probe.

class Bus:
    def __init__(self, daemon, work, nofile=None):
        self.daemon = daemon
        self.path = os.path.join(work, "bus")
        config = os.path.join(work, "bus.conf")
        limits = "\n".join('  <limit name="%s">%d</limit>' % item for item in LIMITS.items())
        with open(config, "w") as out:
            out.write("""<busconfig>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
%s
</busconfig>
""" % (self.path, limits))
        env = dict(os.environ)
        # ASan keeps freed memory in quarantine (256 MiB by default), which would read as growth.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
        self.nofile = nofile
        self.log = open(os.path.join(work, "bus.log"), "w")
        self.process = subprocess.Popen([daemon, "--config-file=" + config, "--nofork", "--nopidfile",
                                         "--print-address=1"], stdout=subprocess.PIPE, stderr=self.log, env=env,
                                        preexec_fn=self._limit_fds)
        self.process.stdout.readline()
        self.pid = self.process.pid

    def _limit_fds(self):
        if self.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def alive(self):
        return self.process.poll() is None

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class Probe(threading.Thread):
    """A calls the driver and sends numbered signals to B every 20 ms; records latency, loss, RSS."""

    def __init__(self, bus):
        super().__init__(daemon=True)
        self.bus = bus
        self.a = Connection(bus.path)
        self.b = Connection(bus.path)
        self.stop_event = threading.Event()
        self.sent = 0
        self.received = []
        self.calls = 0
        self.worst = 0.0
        self.failures = []
        self.max_rss = bus.rss_kb()
        self.max_fds = bus.fd_count()

    def tick(self):
        self.sent += 1
        self.a.sock.sendall(build(SIGNAL, self.a.next_serial(),
                                  {"path": "/probe", "interface": "org.busgate.Probe", "member": "Seq",
                                   "destination": self.b.unique_name}, "u", (self.sent,)))
        started = time.monotonic()
        try:
            reply = self.a.call("GetId", timeout=PROBE_BOUND * 3)
            if reply["type"] != METHOD_RETURN:
                self.failures.append("GetId failed: %s" % error_of(reply))
        except (TimeoutError, Closed, OSError) as error:
            self.failures.append("probe call: %s" % error)
            self.stop_event.set()
        self.calls += 1
        self.worst = max(self.worst, time.monotonic() - started)
        self.collect(0)
        self.max_rss = max(self.max_rss, self.bus.rss_kb())
        self.max_fds = max(self.max_fds, self.bus.fd_count())

    def collect(self, timeout):
        for message in self.b.messages(timeout):
            if message.get("member") == "Seq":
                self.received.append(message["args"][0])

    def run(self):
        try:
            while not self.stop_event.is_set():
                self.tick()
                self.stop_event.wait(0.02)
        except Exception as error:  # reported as a failure of the case
            self.failures.append("probe: %r" % error)

    def finish(self):
        deadline = time.monotonic() + PROBE_BOUND
        while self.calls < 5 and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)  # even a quick case is watched for a few rounds
        self.stop_event.set()
        self.join(PROBE_BOUND * 4)
        if self.is_alive():
            self.failures.append("probe thread stuck")
            return
        deadline = time.monotonic() + PROBE_BOUND
        while len(self.received) < self.sent and time.monotonic() < deadline:
            try:
                self.collect(0.05)
            except (Closed, OSError) as error:
                self.failures.append("probe receiver: %s" % error)
                break
        if self.received != list(range(1, self.sent + 1)):
            missing = sorted(set(range(1, self.sent + 1)) - set(self.received))
            self.failures.append("lost or reordered probe signals: sent %d, got %d, missing %s" %
                                 (self.sent, len(self.received), missing[:10]))
        if self.worst > PROBE_BOUND:
            self.failures.append("slowest probe call took %.2fs" % self.worst)
        self.a.close()
        self.b.close()


# ---------------------------------------------------------------------------------------------
# The cases. Each returns (failures, what was measured) and runs while the probe does.

def expect(failures, condition, text):
    if not condition:
        failures.append(text)


def case_half_open_auth(bus, probe):
    """Connections that stop mid-authentication (or after it, before Hello) are dropped: the oldest
    when more than max_incomplete_connections wait, the rest at auth_timeout. Newcomers still get in."""
    failures = []
    waiting = []
    for index in range(LIMITS["max_incomplete_connections"] * 3):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(bus.path)
        stage = index % 3
        if stage == 1:
            sock.sendall(b"\0AUTH EXTERNAL ")  # half a line
        elif stage == 2:  # authenticated, never says Hello
            sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\nBEGIN\r\n")
        waiting.append(sock)
    started = time.monotonic()
    newcomer_ok = False
    try:
        newcomer = Connection(bus.path, timeout=PROBE_BOUND)
        newcomer_ok = newcomer.call("GetId", timeout=PROBE_BOUND)["type"] == METHOD_RETURN
        newcomer.close()
    except (Closed, OSError, TimeoutError) as error:
        newcomer_ok = error
    expect(failures, newcomer_ok is True, "a new client could not connect while half-open ones wait: %r" % newcomer_ok)
    closed_at = []
    for sock in waiting:
        sock.settimeout(max(LIMITS["auth_timeout"] / 1000 + 3 - (time.monotonic() - started), 0.01))
        try:
            while sock.recv(4096):
                pass
            closed_at.append(time.monotonic() - started)
        except ConnectionResetError:
            closed_at.append(time.monotonic() - started)
        except OSError:
            pass
        sock.close()
    expect(failures, len(closed_at) == len(waiting),
           "%d of %d half-open connections still open after auth_timeout" % (len(waiting) - len(closed_at),
                                                                             len(waiting)))
    return failures, "%d half-open connections all closed within %.2fs (auth_timeout %dms); newcomer served" % (
        len(waiting), max(closed_at or [0]), LIMITS["auth_timeout"])


def case_byte_by_byte(bus, probe):
    """A client that writes authentication, Hello and a call one byte per write is served normally."""
    failures = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(bus.path)
    script = b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\nBEGIN\r\n"
    script += call_message(1, "org.freedesktop.DBus", "Hello")
    script += call_message(2, "org.freedesktop.DBus", "NameHasOwner", "s", ("org.freedesktop.DBus",))
    started = time.monotonic()
    for byte in script:
        sock.send(bytes([byte]))
        time.sleep(0.0005)
    connection = Connection.__new__(Connection)
    connection.sock, connection.buffer, connection.queued, connection.serial = sock, bytearray(), [], 2
    sock.settimeout(PROBE_BOUND)
    expect(failures, connection.line().startswith(b"OK "), "no OK after a byte-by-byte AUTH")
    hello = connection.reply_to(1, PROBE_BOUND)
    answer = connection.reply_to(2, PROBE_BOUND)
    expect(failures, hello["type"] == METHOD_RETURN, "Hello written byte by byte failed")
    expect(failures, answer["type"] == METHOD_RETURN and answer["args"] == [1],
           "NameHasOwner written byte by byte failed: %r" % answer)
    sock.close()
    return failures, "%d bytes in %d writes over %.2fs: Hello and NameHasOwner answered" % (
        len(script), len(script), time.monotonic() - started)


def case_oversized_message(bus, probe):
    """A message declaring a body over max_message_size gets its sender disconnected, no reply."""
    failures = []
    offender = Connection(bus.path)
    message = bytearray(call_message(offender.next_serial(), "org.freedesktop.DBus", "GetId"))
    struct.pack_into("<I", message, 4, LIMITS["max_message_size"] + 8)
    offender.sock.sendall(bytes(message) + b"\0" * 4096)
    closed = offender.closed_within(PROBE_BOUND)
    expect(failures, closed, "a %d-byte body was not refused with a disconnect" % (LIMITS["max_message_size"] + 8))
    # Exactly at the limit (header + body) the message is acceptable: an oversized string argument
    # in a well-formed message a little under it goes through.
    big = Connection(bus.path)
    payload = "x" * (LIMITS["max_message_size"] // 2)
    reply = big.call("NameHasOwner", "s", (payload,), timeout=PROBE_BOUND * 2)
    expect(failures, reply["type"] in (ERROR, METHOD_RETURN), "a %d-byte argument got no answer" % len(payload))
    big.close()
    offender.close()
    return failures, "body of max_message_size+8 bytes: disconnected=%s; half-limit message answered (%s)" % (
        closed, error_of(reply) or "method return")


def case_truncated_message(bus, probe):
    """A message whose body is shorter than its signature says is invalid: sender disconnected."""
    failures = []
    offender = Connection(bus.path)
    body = struct.pack("<I", 100) + b"abc"  # a string claiming 100 bytes, 3 present
    offender.sock.sendall(build(METHOD_CALL, offender.next_serial(),
                                {"path": "/org/freedesktop/DBus", "interface": "org.freedesktop.DBus",
                                 "member": "NameHasOwner", "destination": "org.freedesktop.DBus"},
                                "s", body=bytearray(body)))
    closed = offender.closed_within(PROBE_BOUND)
    expect(failures, closed, "a truncated body was not refused with a disconnect")
    # Header fields array running past the end of the header: also invalid.
    second = Connection(bus.path)
    message = bytearray(call_message(second.next_serial(), "org.freedesktop.DBus", "GetId"))
    struct.pack_into("<I", message, 12, struct.unpack_from("<I", message, 12)[0] + 64)
    second.sock.sendall(bytes(message) + b"\0" * 128)
    closed_fields = second.closed_within(PROBE_BOUND)
    expect(failures, closed_fields, "a header array longer than its fields was not refused")
    offender.close()
    second.close()
    return failures, "truncated body disconnected=%s, bad field array disconnected=%s" % (closed, closed_fields)


def send_with_fds(sock, data, fds):
    return sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


def case_fd_flood(bus, probe):
    """A message carrying 1024 fds (over max_message_unix_fds, sent 253 per write as the kernel allows)
    gets its sender disconnected, and the bus keeps none of those fds."""
    failures = []
    fds_before = bus.fd_count()
    offender = Connection(bus.path, unix_fds=True)
    null = os.open("/dev/null", os.O_RDONLY)
    message = call_message(offender.next_serial(), "org.freedesktop.DBus", "GetId", extra={"unix_fds": 1024})
    sent = 0
    counts = [253, 253, 253, 253, 12]  # SCM_MAX_FD per write
    step = len(message) // len(counts)
    try:
        for index, count in enumerate(counts):
            piece = message[index * step:] if index == len(counts) - 1 else message[index * step:(index + 1) * step]
            send_with_fds(offender.sock, piece, [null] * count)
            sent += count
    except OSError:
        pass  # the bus may close before all of it is written
    closed = offender.closed_within(PROBE_BOUND)
    expect(failures, closed, "a message with 1024 fds was not refused with a disconnect")
    offender.close()
    time.sleep(0.2)
    fds_after = bus.fd_count()
    expect(failures, fds_after <= fds_before + 2, "the bus kept fds: %d before, %d after" % (fds_before, fds_after))
    os.close(null)
    return failures, "%d fds sent for one message: disconnected=%s; bus fds %d before, %d after" % (
        sent, closed, fds_before, fds_after)


def case_fds_without_message(bus, probe):
    """fds sent with a message that never completes are dropped after pending_fd_timeout."""
    failures = []
    offender = Connection(bus.path, unix_fds=True)
    null = os.open("/dev/null", os.O_RDONLY)
    message = call_message(offender.next_serial(), "org.freedesktop.DBus", "GetId", extra={"unix_fds": 8})
    send_with_fds(offender.sock, message[:20], [null] * 8)  # the rest never comes
    os.close(null)
    started = time.monotonic()
    closed = offender.closed_within(LIMITS["pending_fd_timeout"] / 1000 + 3)
    waited = time.monotonic() - started
    expect(failures, closed, "a connection holding fds in an unfinished message was never closed")
    expect(failures, not closed or waited >= LIMITS["pending_fd_timeout"] / 1000 * 0.5,
           "closed after %.2fs, before pending_fd_timeout" % waited)
    offender.close()
    return failures, "8 fds in a message never finished: disconnected=%s after %.2fs (pending_fd_timeout %dms)" % (
        closed, waited, LIMITS["pending_fd_timeout"])


def case_fds_never_read(bus, probe):
    """A receiver that never reads while fds are sent to it: the bus's fd count stays bounded."""
    failures = []
    receiver = Connection(bus.path, unix_fds=True)
    sender = Connection(bus.path, unix_fds=True)
    null = os.open("/dev/null", os.O_RDONLY)
    fds_before = bus.fd_count()
    peak = fds_before
    sent = 0
    sender_closed = False
    try:
        for _ in range(400):
            message = build(SIGNAL, sender.next_serial(),
                            {"path": "/flood", "interface": "org.busgate.Flood", "member": "Fd",
                             "destination": receiver.unique_name, "unix_fds": 4}, "", ())
            send_with_fds(sender.sock, message, [null] * 4)
            sent += 1
            if sent % 50 == 0:
                peak = max(peak, bus.fd_count())
                sender.messages(0)
    except (Closed, OSError):
        sender_closed = True
    time.sleep(0.3)
    peak = max(peak, bus.fd_count())
    os.close(null)
    receiver_closed = receiver.closed_within(0.1)
    receiver.close()
    if not sender_closed:
        sender_closed = sender.closed_within(0.1)
    sender.close()
    time.sleep(0.2)
    fds_after = bus.fd_count()
    bound = LIMITS["max_outgoing_unix_fds"] * 2 + 300  # what the receiver's queue may hold, plus sockets
    expect(failures, peak - fds_before <= bound, "bus fds grew by %d (bound %d)" % (peak - fds_before, bound))
    expect(failures, fds_after <= fds_before + 2, "fds leaked: %d before, %d after" % (fds_before, fds_after))
    return failures, "%d messages x4 fds to a non-reader: bus fds +%d at peak, %+d after; receiver closed=%s, sender closed=%s" % (
        sent, peak - fds_before, fds_after - fds_before, receiver_closed, sender_closed)


def case_match_rule_flood(bus, probe):
    """AddMatch past max_match_rules_per_connection: LimitsExceeded, connection kept."""
    failures = []
    offender = Connection(bus.path)
    accepted, error = 0, None
    for index in range(LIMITS["max_match_rules_per_connection"] + 20):
        reply = offender.call("AddMatch", "s", ("type='signal',member='M%d'" % index,))
        if reply["type"] == METHOD_RETURN:
            accepted += 1
        else:
            error = error_of(reply)
    expect(failures, accepted == LIMITS["max_match_rules_per_connection"],
           "%d rules accepted, limit %d" % (accepted, LIMITS["max_match_rules_per_connection"]))
    expect(failures, error == "org.freedesktop.DBus.Error.LimitsExceeded", "past the limit: %s" % error)
    still = offender.call("GetId")["type"] == METHOD_RETURN
    expect(failures, still, "the offender was disconnected")
    offender.close()
    return failures, "%d AddMatch: %d accepted, then %s; connection kept" % (
        LIMITS["max_match_rules_per_connection"] + 20, accepted, error)


def case_name_request_flood(bus, probe):
    """RequestName past max_names_per_connection (the unique name counts): LimitsExceeded."""
    failures = []
    offender = Connection(bus.path)
    accepted, error = 0, None
    for index in range(LIMITS["max_names_per_connection"] + 20):
        reply = offender.call("RequestName", "su", ("org.busgate.Flood.N%d" % index, 4))
        if reply["type"] == METHOD_RETURN and reply["args"] == [1]:
            accepted += 1
        else:
            error = error_of(reply)
    expect(failures, accepted == LIMITS["max_names_per_connection"] - 1,
           "%d names granted, limit %d" % (accepted, LIMITS["max_names_per_connection"]))
    expect(failures, error == "org.freedesktop.DBus.Error.LimitsExceeded", "past the limit: %s" % error)
    offender.close()
    return failures, "%d RequestName: %d granted, then %s" % (LIMITS["max_names_per_connection"] + 20, accepted, error)


def case_unrequested_replies(bus, probe):
    """Replies and errors to calls never made are not delivered; the sender is told only if it waits."""
    failures = []
    offender = Connection(bus.path)
    target = Connection(bus.path)
    outcomes = set()
    for index in range(200):
        kind = METHOD_RETURN if index % 2 == 0 else ERROR
        fields = {"destination": target.unique_name, "reply_serial": 1000 + index}
        if kind == ERROR:
            fields["error"] = "org.busgate.Error.Fake"
        offender.sock.sendall(build(kind, offender.next_serial(), fields, "s", ("forged",)))
    for message in offender.messages(0.5):
        outcomes.add(error_of(message) or "type %d" % message["type"])
    got = [message for message in target.messages(0.3) if "reply_serial" in message]
    expect(failures, not got, "the target received %d forged replies" % len(got))
    expect(failures, offender.call("GetId")["type"] == METHOD_RETURN, "the offender was disconnected")
    offender.close()
    target.close()
    return failures, "200 forged replies: target received %d; offender heard %s" % (
        len(got), sorted(outcomes) or "nothing")


def case_slow_reader(bus, probe):
    """A receiver that never reads while a sender floods it: the bus's memory stays bounded by
    max_outgoing_bytes; the flooder learns of it, the probe does not notice."""
    failures = []
    receiver = Connection(bus.path)
    sender = Connection(bus.path)
    sender.sock.settimeout(PROBE_BOUND * 2)
    rss_before = bus.rss_kb()
    payload = "y" * 60000
    total = LIMITS["max_outgoing_bytes"] * 3
    sent, errors, replies = 0, set(), 0
    try:
        while sent * len(payload) < total:
            (sender.send_call("Flood", "s", (payload,), destination=receiver.unique_name,
                                            path="/flood", interface="org.busgate.Flood",
                                            flags=NO_REPLY_EXPECTED))
            sent += 1
            for message in sender.messages(0):
                errors.add(error_of(message) or "type %d" % message["type"])
    except (TimeoutError, socket.timeout):
        errors.add("sender throttled (the bus stopped reading it)")
    except (Closed, OSError) as error:
        errors.add("sender: %s" % error)
    peak = bus.rss_kb()
    for message in sender.messages(0.5):
        errors.add(error_of(message) or "type %d" % message["type"])
    # Asked on a fresh connection: dbus-daemon stops reading a sender whose messages fill a receiver.
    observer = Connection(bus.path)
    receiver_gone = observer.call("NameHasOwner", "s", (receiver.unique_name,))["args"] == [0]
    observer.close()
    receiver.close()
    sender.close()
    grown = peak - rss_before
    expect(failures, grown <= RSS_SLACK_KB, "bus RSS grew by %d KiB (bound %d)" % (grown, RSS_SLACK_KB))
    return failures, "%d x 60 KB to a non-reader (%.1f MiB, max_outgoing_bytes %.1f MiB): RSS +%d KiB; receiver disconnected=%s; sender heard %s" % (
        sent, sent * len(payload) / 2**20, LIMITS["max_outgoing_bytes"] / 2**20, grown, receiver_gone,
        sorted(errors) or "nothing")


def case_many_connections(bus, probe, count=int(os.environ.get("HOSTILE_CONNECTIONS", "10000"))):
    """10,000 connections from one user, each authenticating and saying Hello: the first
    max_connections_per_user get names, the rest LimitsExceeded; the bus keeps at most the limits' worth."""
    failures = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count + 200:
        count = hard - 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    hello_script = (b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\nBEGIN\r\n" +
                    call_message(1, "org.freedesktop.DBus", "Hello"))
    outcomes = {}
    sockets = []
    peak_fds = 0
    started = time.monotonic()
    for index in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(PROBE_BOUND * 2)
        try:
            sock.connect(bus.path)
            sock.sendall(hello_script)
            connection = Connection.__new__(Connection)
            connection.sock, connection.buffer, connection.queued, connection.serial = sock, bytearray(), [], 1
            connection.line()
            reply = connection.reply_to(1, PROBE_BOUND * 2)
            outcome = "name" if reply["type"] == METHOD_RETURN else error_of(reply)
        except (Closed, ConnectionResetError, BrokenPipeError):
            outcome = "disconnected"
        except (TimeoutError, socket.timeout):
            outcome = "timeout"
        except OSError as error:
            outcome = "error %s" % error.strerror
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        sockets.append(sock)
        if index % 500 == 0:
            peak_fds = max(peak_fds, bus.fd_count())
    elapsed = time.monotonic() - started
    peak_fds = max(peak_fds, bus.fd_count())
    for sock in sockets:
        sock.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # the probe's two connections are the same user
    expect(failures, outcomes.get("name", 0) == LIMITS["max_connections_per_user"] - 2,
           "%d connections got a name, limit %d" % (outcomes.get("name", 0), LIMITS["max_connections_per_user"]))
    expect(failures, outcomes.get("timeout", 0) == 0, "%d connections got no answer" % outcomes.get("timeout", 0))
    # each connection may hold a pidfd of its peer beside its socket
    bound = 2 * (LIMITS["max_connections_per_user"] + LIMITS["max_incomplete_connections"]) + 64
    expect(failures, peak_fds <= bound, "the bus held %d fds (bound %d)" % (peak_fds, bound))
    return failures, "%d connections in %.1fs: %s; bus fds at most %d" % (
        count, elapsed, ", ".join("%s %d" % item for item in sorted(outcomes.items())), peak_fds)


def case_disconnect_mid_message(bus, probe):
    """Clients that hang up halfway through a message (with and without fds) leave no trace."""
    failures = []
    fds_before = bus.fd_count()
    null = os.open("/dev/null", os.O_RDONLY)
    for index in range(50):
        offender = Connection(bus.path, unix_fds=index % 2 == 1)
        message = call_message(offender.next_serial(), "org.freedesktop.DBus", "NameHasOwner", "s",
                               ("org.busgate.x" * 100,), extra={"unix_fds": 2} if index % 2 else None)
        cut = len(message) * (index % 5 + 1) // 6
        if index % 2:
            send_with_fds(offender.sock, message[:cut], [null, null])
        else:
            offender.sock.sendall(message[:cut])
        offender.close()
    os.close(null)
    time.sleep(0.3)
    fds_after = bus.fd_count()
    expect(failures, fds_after <= fds_before + 2, "fds leaked: %d before, %d after" % (fds_before, fds_after))
    return failures, "50 clients hung up mid-message (25 with fds): bus fds %d before, %d after" % (
        fds_before, fds_after)


def case_out_of_fds(bus, probe):
    """A bus out of fds (EMFILE on accept) pauses accepting instead of spinning, and accepts again
    once connections close. Runs its own bus with RLIMIT_NOFILE 64."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="busgate-emfile-") as work:
        small = Bus(bus.daemon, work, nofile=64)
        held = []
        try:
            for _ in range(80):
                try:
                    held.append(Connection(small.path, timeout=0.5))
                except (Closed, OSError, TimeoutError):
                    break  # this one waits in the listen backlog: the bus is out of fds
            at_limit = len(held)
            cpu_before = small.cpu_seconds()
            time.sleep(1.0)
            spent = small.cpu_seconds() - cpu_before
            expect(failures, spent < 0.3, "the bus used %.2fs of CPU in 1s while out of fds" % spent)
            for connection in held[:10]:
                connection.close()
            del held[:10]
            started = time.monotonic()
            try:
                late = Connection(small.path, timeout=PROBE_BOUND)
                answered = late.call("GetId", timeout=PROBE_BOUND)["type"] == METHOD_RETURN
                held.append(late)
            except (Closed, OSError, TimeoutError) as error:
                answered = error
            expect(failures, answered is True, "no new connection once fds were free: %r" % answered)
            waited = time.monotonic() - started
            expect(failures, small.alive(), "the bus died")
        finally:
            for connection in held:
                connection.close()
            small.stop()
    return failures, "bus with 64 fds: %d clients before EMFILE, %.2fs CPU in 1s at the limit; a newcomer served %.2fs after 10 left" % (
        at_limit, spent, waited)


def case_reload_under_load(bus, probe):
    """SIGHUP (configuration reload) 20 times while calls and signals flow: nothing lost or refused."""
    failures = []
    caller = Connection(bus.path)
    answered = sent = 0
    for _ in range(20):
        bus.process.send_signal(signal.SIGHUP)
        for _ in range(10):
            sent += 1
            reply = caller.call("NameHasOwner", "s", ("org.freedesktop.DBus",), timeout=PROBE_BOUND)
            answered += reply["type"] == METHOD_RETURN and reply["args"] == [1]
        time.sleep(0.02)
    expect(failures, answered == sent, "%d of %d calls answered across reloads" % (answered, sent))
    caller.close()
    return failures, "20 SIGHUPs: %d/%d calls answered" % (answered, sent)


def case_external_uid_spoof(bus, probe):
    """SASL EXTERNAL naming another uid than the socket's is REJECTED (needs root to act as another
    user; without it only the own uid is tried)."""
    failures = []
    if os.getuid() != 0:
        return failures, "skipped the other-user half: not root"
    os.chmod(os.path.dirname(bus.path), 0o755)
    os.chmod(bus.path, 0o777)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.setgid(65534)
        os.setuid(65534)
        answers = []
        for claim in ("0", "1", "65534"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(PROBE_BOUND)
            sock.connect(bus.path)
            sock.sendall(b"\0AUTH EXTERNAL " + claim.encode().hex().encode() + b"\r\n")
            answers.append(sock.recv(200).split(b" ")[0].strip().decode())
        os.write(write_end, " ".join(answers).encode())
        os._exit(0)
    os.waitpid(child, 0)
    os.close(write_end)
    answers = os.read(read_end, 1000).decode().split()
    os.close(read_end)
    expect(failures, answers == ["REJECTED", "REJECTED", "OK"],
           "uid 65534 claiming 0, 1, 65534 got %s" % answers)
    return failures, "uid 65534 claiming uid 0, 1, 65534: %s" % " ".join(answers)


CASES = [
    ("half-open-auth", case_half_open_auth),
    ("byte-by-byte", case_byte_by_byte),
    ("oversized-message", case_oversized_message),
    ("truncated-message", case_truncated_message),
    ("fd-flood-1024", case_fd_flood),
    ("fds-in-unfinished-message", case_fds_without_message),
    ("fds-never-read", case_fds_never_read),
    ("match-rule-flood", case_match_rule_flood),
    ("name-request-flood", case_name_request_flood),
    ("unrequested-replies", case_unrequested_replies),
    ("slow-reader-flood", case_slow_reader),
    ("10000-connections", case_many_connections),
    ("disconnect-mid-message", case_disconnect_mid_message),
    ("reload-under-load", case_reload_under_load),
    ("external-uid-spoof", case_external_uid_spoof),
    ("out-of-fds", case_out_of_fds),
]


def main():
    daemon = sys.argv[1]
    wanted = sys.argv[2:]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="busgate-hostile-") as work:
        bus = Bus(daemon, work)
        try:
            passed, failed = run_cases(bus, wanted)
        finally:
            status = bus.stop()
        if status not in (0, -signal.SIGTERM):
            failed += 1
            print("not ok - the bus exited with status %s on SIGTERM" % status)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def run_cases(bus, wanted):
    passed = failed = 0
    idle_rss = bus.rss_kb()
    print("# %s: pid %d, idle RSS %d KiB, %d fds" % (os.path.basename(bus.daemon), bus.pid, idle_rss,
                                                  bus.fd_count()))
    for name, function in CASES:
        if wanted and name not in wanted:
            continue
        started = time.monotonic()
        case_rss = bus.rss_kb()
        probe = Probe(bus)
        probe.start()
        try:
            failures, measured = function(bus, probe)
        except Exception as error:
            failures, measured = ["raised %r" % error], ""
        probe.finish()
        failures += probe.failures
        if not bus.alive():
            failures.append("the bus died (status %s)" % bus.process.returncode)
        # Each case may park what the limits allow; an offender the bus now holds back instead of cutting
        # off (a slow reader keeps its queue) leaves the allocator that much larger for the cases after it,
        # so all of them together may leave one more case's worth.
        if probe.max_rss - case_rss > RSS_SLACK_KB:
            failures.append("bus RSS grew to %d KiB over %d KiB at the start of the case" % (probe.max_rss, case_rss))
        if probe.max_rss - idle_rss > 2 * RSS_SLACK_KB:
            failures.append("bus RSS grew to %d KiB over idle %d KiB" % (probe.max_rss, idle_rss))
        summary = "%s [probe: %d calls, slowest %.0f ms, %d/%d signals; bus RSS peak %d KiB, fds peak %d; %.1fs]" % (
            measured, probe.calls, probe.worst * 1000, len(probe.received), probe.sent, probe.max_rss,
            probe.max_fds, time.monotonic() - started)
        if failures:
            failed += 1
            print("not ok - %s: %s\n#   %s" % (name, "; ".join(failures), summary))
        else:
            passed += 1
            print("ok - %s: %s" % (name, summary))
        sys.stdout.flush()
        if not bus.alive():
            break
    return passed, failed


if __name__ == "__main__":
    sys.exit(main())
