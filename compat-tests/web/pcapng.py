#!/usr/bin/python3
"""Reads a pcapng file (argument 1) as Wireshark would for D-Bus captures: a section header, an interface of
link type 231, enhanced packet blocks each holding one D-Bus message. Prints one line per packet:
"TYPE MEMBER SENDER" from the message header; exits 1 if the file is malformed."""
import struct
import sys

data = open(sys.argv[1], "rb").read()
offset, linktype = 0, None
while offset < len(data):
    kind, length = struct.unpack_from("<II", data, offset)
    if length < 12 or offset + length > len(data) or struct.unpack_from("<I", data, offset + length - 4)[0] != length:
        sys.exit(f"bad block at {offset}")
    if offset == 0 and (kind != 0x0A0D0D0A or struct.unpack_from("<I", data, 8)[0] != 0x1A2B3C4D):
        sys.exit("no section header block")
    if kind == 1:
        linktype = struct.unpack_from("<H", data, offset + 8)[0]
    elif kind == 6:
        if linktype != 231:
            sys.exit(f"packet before a D-Bus interface (link type {linktype})")
        captured = struct.unpack_from("<I", data, offset + 20)[0]
        message = data[offset + 28:offset + 28 + captured]
        endian = "<" if message[0:1] == b"l" else ">"
        msg_type = message[1]
        body_length, serial, fields_length = struct.unpack_from(endian + "III", message, 4)
        if 16 + ((fields_length + 7) & ~7) + body_length != captured:
            sys.exit("a packet is not one whole D-Bus message")
        fields, position = {}, 16
        while position < 16 + fields_length:
            position = (position + 7) & ~7
            code, sig_length = message[position], message[position + 1]
            sig = message[position + 2:position + 2 + sig_length].decode()
            position += 3 + sig_length
            if sig in ("s", "o"):
                position = (position + 3) & ~3
                (length,) = struct.unpack_from(endian + "I", message, position)
                fields[code] = message[position + 4:position + 4 + length].decode()
                position += 5 + length
            elif sig == "g":
                length = message[position]
                fields[code] = message[position + 1:position + 1 + length].decode()
                position += 2 + length
            else:
                position = (position + 3) & ~3
                fields[code] = struct.unpack_from(endian + "I", message, position)[0]
                position += 4
        names = {1: "method_call", 2: "method_return", 3: "error", 4: "signal"}
        print(names.get(msg_type, "invalid"), fields.get(3, "-"), fields.get(7, "-"))
    offset += length
if linktype != 231:
    sys.exit("no D-Bus interface description block")
