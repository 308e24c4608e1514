#!/usr/bin/python3
"""A bus client for test-web: owns NAME, adds a match rule, prints its unique name, then emits the signal
org.busgate.WebTest.Hello("from-the-test") on every line read from standard input, until end of input."""
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
name = dbus.service.BusName(sys.argv[2], bus)
bus.add_match_string("type='signal',interface='org.busgate.WebTest.Control'")


class Emitter(dbus.service.Object):
    @dbus.service.signal("org.busgate.WebTest", signature="sa{sv}")
    def Hello(self, text, details):
        pass


emitter = Emitter(bus, "/org/busgate/WebTest")
print(bus.get_unique_name(), flush=True)
loop = GLib.MainLoop()


def on_input(source, condition):
    line = sys.stdin.readline()
    if not line:
        loop.quit()
        return False
    emitter.Hello(line.strip(), {"count": dbus.UInt32(3), "bytes": dbus.ByteArray(b"hi")})
    bus.flush()
    print("emitted", flush=True)
    return True


GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_input)
loop.run()
