#!/usr/bin/python3
"""A small deterministic D-Bus program for test-diff-trace: two connections, a well-known name, a method call
and its reply, a signal to a subscriber, and a name that changes owner. With DIFF_TRACE_PLANT set to the
value of DIFF_TRACE_SIDE (which diff-trace sets to the side it runs), it sends one extra signal there: a
difference that diff-trace must find. With --gtestdbus it does all that on a bus of its own from GTestDBus."""
import os
import sys

from gi.repository import Gio, GLib

INTERFACE = 'org.example.Probe'
XML = f"""<node><interface name="{INTERFACE}">
  <method name="Echo"><arg type="s" direction="in"/><arg type="s" direction="out"/></method>
</interface></node>"""


def wait_for(context, condition, what):
    deadline = GLib.get_monotonic_time() + 10 * 1000000
    while not condition():
        if GLib.get_monotonic_time() > deadline:
            sys.exit(f'diff-trace-probe: timed out waiting for {what}')
        context.iteration(True)


def main():
    context = GLib.MainContext.default()
    test_bus = None
    if '--gtestdbus' in sys.argv:
        # A private bus as GLib's tests start one: GTestDBus runs G_TEST_DBUS_DAEMON.
        test_bus = Gio.TestDBus.new(Gio.TestDBusFlags.NONE)
        test_bus.up()
        address = test_bus.get_bus_address()
    else:
        address = os.environ['DBUS_SESSION_BUS_ADDRESS']
    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    service = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
    client = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)

    def on_call(connection, sender, path, interface, method, parameters, invocation):
        invocation.return_value(GLib.Variant('(s)', (parameters.unpack()[0].upper(),)))
    node = Gio.DBusNodeInfo.new_for_xml(XML)
    service.register_object('/org/example/Probe', node.interfaces[0], on_call, None, None)

    received = []
    client.signal_subscribe(None, INTERFACE, None, '/org/example/Probe', None, Gio.DBusSignalFlags.NONE,
                            lambda *args: received.append(args[3] + ':' + args[5].unpack()[0]))
    owner_changes = []
    client.signal_subscribe('org.freedesktop.DBus', 'org.freedesktop.DBus', 'NameOwnerChanged',
                            '/org/freedesktop/DBus', 'org.example.Probe', Gio.DBusSignalFlags.NONE,
                            lambda *args: owner_changes.append(args[5].unpack()))
    # A round trip through the bus so both match rules are in place before anything is sent.
    client.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'GetId',
                     None, None, Gio.DBusCallFlags.NONE, -1, None)

    service.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'RequestName',
                      GLib.Variant('(su)', ('org.example.Probe', 4)), None, Gio.DBusCallFlags.NONE, -1, None)
    wait_for(context, lambda: len(owner_changes) == 1, 'NameOwnerChanged')

    # Asynchronous: the service answers from this same main context.
    replies = []
    client.call('org.example.Probe', '/org/example/Probe', INTERFACE, 'Echo', GLib.Variant('(s)', ('hello',)),
                None, Gio.DBusCallFlags.NONE, -1, None, lambda source, result: replies.append(source.call_finish(result)))
    wait_for(context, lambda: replies, 'the reply to Echo')
    assert replies[0].unpack() == ('HELLO',)

    service.emit_signal(None, '/org/example/Probe', INTERFACE, 'Changed', GLib.Variant('(s)', ('first',)))
    wait_for(context, lambda: len(received) == 1, 'the first signal')
    if os.environ.get('DIFF_TRACE_PLANT') and os.environ.get('DIFF_TRACE_PLANT') == os.environ.get('DIFF_TRACE_SIDE'):
        service.emit_signal(None, '/org/example/Probe', INTERFACE, 'Planted', GLib.Variant('(s)', ('extra',)))
        wait_for(context, lambda: len(received) == 2, 'the planted signal')

    service.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'ReleaseName',
                      GLib.Variant('(s)', ('org.example.Probe',)), None, Gio.DBusCallFlags.NONE, -1, None)
    wait_for(context, lambda: len(owner_changes) == 2, 'the second NameOwnerChanged')
    service.close_sync(None)
    client.close_sync(None)
    if test_bus:
        test_bus.down()
    print('received', received, 'owners', [change[2] != '' for change in owner_changes])


if __name__ == '__main__':
    main()
