#!/usr/bin/python3
"""The dbus-python (libdbus) client of the migration matrix: calls the sdbus-c++ echo service and
receives its signal, owns org.example.DbusPython and exports Reverse(s) on it, then calls that back
through the bus. Prints one "key value" line per result. Needs Debian's /usr/bin/python3."""
import os
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib


class Reverser(dbus.service.Object):
    @dbus.service.method("org.example.DbusPython", in_signature="s", out_signature="s")
    def Reverse(self, text):
        return text[::-1]


def main() -> int:
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(os.environ["DBUS_SESSION_BUS_ADDRESS"])
    loop = GLib.MainLoop()
    signals = []

    def on_echoed(text):
        signals.append(str(text))
        loop.quit()

    bus.add_signal_receiver(on_echoed, signal_name="Echoed", dbus_interface="org.example.Echo",
                            bus_name="org.example.Echo", path="/org/example/Echo")
    echo = dbus.Interface(bus.get_object("org.example.Echo", "/org/example/Echo"), "org.example.Echo")
    print("reply", echo.Echo("via dbus-python"))
    GLib.timeout_add(3000, loop.quit)
    if not signals:
        loop.run()
    print("signal", signals[0] if signals else "(none)")

    name = dbus.service.BusName("org.example.DbusPython", bus, do_not_queue=True)
    Reverser(bus, "/org/example/DbusPython")
    print("request-name", "owner" if bus.get_name_owner(name.get_name()) == bus.get_unique_name() else "other")
    result = []
    reverser = dbus.Interface(bus.get_object("org.example.DbusPython", "/org/example/DbusPython"),
                              "org.example.DbusPython")
    reverser.Reverse("dbus-python", reply_handler=lambda text: (result.append(str(text)), loop.quit()),
                     error_handler=lambda error: (result.append(error.get_dbus_name()), loop.quit()))
    loop.run()
    print("reverse", result[0])
    try:
        echo.NoSuchMethod()
        print("unknown-method (no error)")
    except dbus.exceptions.DBusException as error:
        print("unknown-method", error.get_dbus_name())
    return 0


if __name__ == "__main__":
    sys.exit(main())
