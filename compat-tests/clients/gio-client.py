#!/usr/bin/python3
"""The python3-gi (GDBus) client of the migration matrix: calls the sdbus-c++ echo service and
receives its signal, owns org.example.Gio and exports Reverse(s) on it, then calls that back through
the bus. Prints one "key value" line per result. Needs Debian's /usr/bin/python3 (python3-gi)."""
import os
import sys

from gi.repository import Gio, GLib

INTERFACE_XML = """<node><interface name="org.example.Gio">
  <method name="Reverse"><arg type="s" direction="in"/><arg type="s" direction="out"/></method>
</interface></node>"""


def main() -> int:
    connection = Gio.DBusConnection.new_for_address_sync(
        os.environ["DBUS_SESSION_BUS_ADDRESS"],
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    loop = GLib.MainLoop()
    signals = []

    def on_signal(_connection, _sender, _path, _interface, _member, parameters):
        signals.append(parameters.unpack()[0])
        loop.quit()

    connection.signal_subscribe("org.example.Echo", "org.example.Echo", "Echoed", "/org/example/Echo",
                                None, Gio.DBusSignalFlags.NONE, on_signal)
    reply = connection.call_sync("org.example.Echo", "/org/example/Echo", "org.example.Echo", "Echo",
                                 GLib.Variant("(s)", ("via python3-gi",)), GLib.VariantType("(s)"),
                                 Gio.DBusCallFlags.NONE, 5000, None)
    print("reply", reply.unpack()[0])
    GLib.timeout_add(3000, loop.quit)
    if not signals:
        loop.run()
    print("signal", signals[0] if signals else "(none)")

    def on_call(_connection, _sender, _path, _interface, method, parameters, invocation):
        text = parameters.unpack()[0]
        invocation.return_value(GLib.Variant("(s)", (text[::-1],)))

    node = Gio.DBusNodeInfo.new_for_xml(INTERFACE_XML)
    connection.register_object("/org/example/Gio", node.interfaces[0], on_call, None, None)
    requested = connection.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "RequestName", GLib.Variant("(su)", ("org.example.Gio", 4)),
                                     GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, 5000, None)
    print("request-name", requested.unpack()[0])
    result = []

    def on_reply(source, task):
        try:
            result.append(source.call_finish(task).unpack()[0])
        except GLib.Error as error:
            result.append(Gio.DBusError.get_remote_error(error))
        loop.quit()

    connection.call("org.example.Gio", "/org/example/Gio", "org.example.Gio", "Reverse",
                    GLib.Variant("(s)", ("python3-gi",)), GLib.VariantType("(s)"), Gio.DBusCallFlags.NONE,
                    5000, None, on_reply)
    loop.run()
    print("reverse", result[0])
    try:
        connection.call_sync("org.example.Echo", "/org/example/Echo", "org.example.Echo", "NoSuchMethod",
                             None, None, Gio.DBusCallFlags.NONE, 5000, None)
        print("unknown-method (no error)")
    except GLib.Error as error:
        print("unknown-method", Gio.DBusError.get_remote_error(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
