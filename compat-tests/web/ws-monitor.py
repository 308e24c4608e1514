#!/usr/bin/python3
"""A minimal WebSocket client of busgate's /monitor over its Unix socket (RFC 6455 by hand, no library):
sends a filter, reads batches for SECONDS and prints "events N dropped M batches B".
Usage: ws-monitor.py SOCKET SECONDS [MATCH_RULE]"""
import base64
import json
import os
import socket
import struct
import sys
import signal
import time

signal.signal(signal.SIGINT, lambda *_: setattr(sys.modules[__name__], "deadline", 0))
path, seconds = sys.argv[1], float(sys.argv[2])
match = sys.argv[3] if len(sys.argv) > 3 else ""
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect(path)
key = base64.b64encode(os.urandom(16)).decode()
connection.sendall((f"GET /monitor HTTP/1.1\r\nHost: busgate\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
buffer = b""
while b"\r\n\r\n" not in buffer:
    buffer += connection.recv(4096)
head, buffer = buffer.split(b"\r\n\r\n", 1)
if not head.startswith(b"HTTP/1.1 101"):
    sys.exit(f"no upgrade: {head.decode(errors='replace')}")


def send_text(text):
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81]) + (bytes([0x80 | len(payload)]) if len(payload) < 126 else
                              bytes([0x80 | 126]) + struct.pack(">H", len(payload)))
    connection.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


send_text(json.dumps({"match": match, "body": True}))
events = dropped = batches = 0
message = b""
deadline = time.monotonic() + seconds
connection.settimeout(0.2)
while time.monotonic() < deadline:
    try:
        data = connection.recv(1 << 20)
    except socket.timeout:
        continue
    if not data:
        break
    buffer += data
    while len(buffer) >= 2:
        length, offset = buffer[1] & 0x7f, 2
        if length == 126:
            if len(buffer) < 4:
                break
            length, offset = struct.unpack(">H", buffer[2:4])[0], 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length, offset = struct.unpack(">Q", buffer[2:10])[0], 10
        if len(buffer) < offset + length:
            break
        final = buffer[0] & 0x80
        frame, buffer = buffer[offset:offset + length], buffer[offset + length:]
        message += frame
        if not final:
            continue
        batch, message = json.loads(message), b""
        batches += 1
        events += len(batch["events"])
        dropped = batch["dropped_total"]
print(f"events {events} dropped {dropped} batches {batches}", flush=True)
