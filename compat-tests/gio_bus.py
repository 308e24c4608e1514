# A private bus and GDBus clients that record what they receive, for the compat tests written in Python
# (test-dbus1-semantics, test-security).
import os
import subprocess
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

BUS = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
TIMEOUT_MS = 3000


class Bus:
    """A private bus of one daemon on `config_text`, written to WORK/bus.conf; its stderr goes to WORK/log."""

    def __init__(self, daemon, work, config_text, environment=None):
        self.work = work
        self.config = os.path.join(work, "bus.conf")
        with open(self.config, "w") as f:
            f.write(config_text)
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen([daemon, f"--config-file={self.config}", "--nofork",
                                         f"--print-address={write_end}"],
                                        pass_fds=[write_end], stderr=open(os.path.join(work, "log"), "w"),
                                        env=environment)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            self.address = pipe.readline().strip()
        if not self.address:
            raise RuntimeError(f"{daemon} printed no address")

    def close(self):
        self.process.terminate()
        self.process.wait(5)


class Client:
    """A GDBus connection that records every message it receives, in order; calls to it go unanswered."""

    def __init__(self, bus, hello=True, swallow_calls=True, address=None):
        flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        if hello:
            flags |= Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
        self.received = []
        self.swallow_calls = swallow_calls
        self.connection = Gio.DBusConnection.new_for_address_sync(address or bus.address, flags, None, None)
        self.connection.set_exit_on_close(False)
        self.connection.add_filter(self._filter)

    def _filter(self, connection, message, incoming):
        if not incoming:
            return message
        self.received.append(message)
        if self.swallow_calls and message.get_message_type() == Gio.DBusMessageType.METHOD_CALL:
            return None  # nobody answers: the call stays pending
        return message

    @property
    def name(self):
        return self.connection.get_unique_name()

    def message(self, destination, path, interface, member, body=None, no_reply=False):
        message = Gio.DBusMessage.new_method_call(destination, path, interface, member)
        if body is not None:
            message.set_body(body)
        if no_reply:
            message.set_flags(Gio.DBusMessageFlags.NO_REPLY_EXPECTED)
        return message

    def call(self, destination, path, interface, member, body=None):
        """The reply as a line of text: its signature and value, or the error name and text."""
        message = self.message(destination, path, interface, member, body)
        try:
            reply, _ = self.connection.send_message_with_reply_sync(message, Gio.DBusSendMessageFlags.NONE,
                                                                    TIMEOUT_MS, None)
        except GLib.Error as error:
            return f"failed: {error.message}"
        return describe(reply)

    def send(self, message):
        self.connection.send_message(message, Gio.DBusSendMessageFlags.NONE)
        return message.get_serial()

    def driver(self, member, body=None, interface=BUS):
        return self.call(BUS, BUS_PATH, interface, member, body)

    def close(self):
        # The other end may close it between the check and the call (a proxy that exits): closed either way.
        if not self.connection.is_closed():
            try:
                self.connection.close_sync(None)
            except GLib.Error as error:
                if not error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CLOSED):
                    raise


def describe(message):
    kind = message.get_message_type()
    body = message.get_body()
    if kind == Gio.DBusMessageType.ERROR:
        text = body.unpack()[0] if body is not None and body.get_type_string().startswith("(s") else ""
        return f"error {message.get_error_name()}: {text!r}"
    if kind == Gio.DBusMessageType.METHOD_RETURN:
        return f"reply {body.print_(True) if body is not None else '()'}"
    if kind == Gio.DBusMessageType.SIGNAL:
        return f"signal {message.get_interface()}.{message.get_member()} {body.print_(False) if body else '()'}" \
               f" to {message.get_destination() or '(broadcast)'}"
    return f"call {message.get_interface()}.{message.get_member()}"


def pump(seconds=0.3):
    context = GLib.MainContext.default()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while context.iteration(False):
            pass
        time.sleep(0.01)


def header(message):
    """Sender and destination as a client sees them."""
    return f"from {message.get_sender() or '(none)'} to {message.get_destination() or '(none)'}"


def s(*values):
    return GLib.Variant("(" + "s" * len(values) + ")", values)
