#!/usr/bin/python3
"""The bus driver's answers that issue 15 found different from dbus-daemon's, asked one after the other by
three GDBus connections; run under diff-trace (meson test diff-trace-driver), which must find busgate's
traffic identical to dbus-daemon's: the owner queue after REPLACE_EXISTING without ALLOW_REPLACEMENT,
RequestName of the bus's own name, GetNameOwner of an invalid name, the driver-only methods asked about the
driver, Properties on the driver, StartServiceByName of an owned name without a service file, a driver call
flagged NO_REPLY_EXPECTED, a call with no destination, and a connection leaving with names and a match
rule on its unique name."""
import os

from gi.repository import Gio, GLib

ADDRESS = os.environ['DBUS_SESSION_BUS_ADDRESS']
FLAGS = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
BUS = ('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus')


def connect():
    return Gio.DBusConnection.new_for_address_sync(ADDRESS, FLAGS, None, None)


def call(connection, method, signature=None, arguments=None, interface=BUS[2]):
    """A call to the driver; its answer (reply or error) is what diff-trace compares."""
    try:
        connection.call_sync(BUS[0], BUS[1], interface, method,
                             GLib.Variant(signature, arguments) if signature else None, None,
                             Gio.DBusCallFlags.NONE, 2000, None)
    except GLib.Error:
        pass


first, second, third = connect(), connect(), connect()
# The queue: owner first, a plain request, then REPLACE_EXISTING against an owner that allows no replacement.
call(first, 'RequestName', '(su)', ('org.example.Queue', 0))
call(second, 'RequestName', '(su)', ('org.example.Queue', 0))
call(third, 'RequestName', '(su)', ('org.example.Queue', 2))
call(first, 'ListQueuedOwners', '(s)', ('org.example.Queue',))
call(first, 'RequestName', '(su)', ('org.freedesktop.DBus', 0))
call(first, 'GetNameOwner', '(s)', ('not a name',))
call(first, 'GetConnectionStats', '(s)', ('org.freedesktop.DBus',), interface='org.freedesktop.DBus.Debug.Stats')
call(first, 'GetAdtAuditSessionData', '(s)', ('org.freedesktop.DBus',))
call(first, 'GetConnectionSELinuxSecurityContext', '(s)', ('org.freedesktop.DBus',))
call(first, 'GetAll', '(s)', ('org.freedesktop.DBus.Peer',), interface='org.freedesktop.DBus.Properties')
call(first, 'Get', '(ss)', ('org.freedesktop.DBus', 'NoSuchProperty'), interface='org.freedesktop.DBus.Properties')
call(first, 'GetAll', '(s)', ('',), interface='org.freedesktop.DBus.Properties')
call(first, 'StartServiceByName', '(su)', ('org.example.Queue', 0))
no_reply = Gio.DBusMessage.new_method_call(BUS[0], BUS[1], BUS[2], 'GetId')
no_reply.set_flags(Gio.DBusMessageFlags.NO_REPLY_EXPECTED)
first.send_message(no_reply, Gio.DBusSendMessageFlags.NONE)
# No destination: dbus-daemon answers as the peer at the other end of the socket.
no_destination = Gio.DBusMessage.new_method_call(None, '/', 'org.freedesktop.DBus.Peer', 'Ping')
try:
    first.send_message_with_reply_sync(no_destination, Gio.DBusSendMessageFlags.NONE, 2000, None)
except GLib.Error:
    pass
call(first, 'Ping', interface='org.freedesktop.DBus.Peer')
# A connection leaving with two names and the queue place: the next owner, and a rule on its unique name.
call(second, 'RequestName', '(su)', ('org.example.Leaving1', 0))
call(second, 'RequestName', '(su)', ('org.example.Leaving2', 0))
rule = "type='signal',sender='%s'" % second.get_unique_name()
call(first, 'AddMatch', '(s)', (rule,))
second.close_sync(None)
call(first, 'GetNameOwner', '(s)', ('org.example.Queue',))
call(first, 'RemoveMatch', '(s)', (rule,))
call(first, 'GetId')
