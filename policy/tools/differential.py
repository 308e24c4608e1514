#!/usr/bin/python3
"""Builds policy/differential-cases.txt: configurations, probes, and the decision dbus-daemon makes.

Probes of kind own, call and driver are run against the real dbus-daemon (Debian 1.14.10) and their
expectation is what it decided ("source dbus-daemon"). Probes dbus-python cannot observe without a main
loop (signals, replies, eavesdropping) carry the expectation derived from dbus-daemon(1) and bus/policy.c
("source doc"), written here by hand.

Run as root (probes switch to uids 0, 1, 2, 3, 65534) with the system python3 and python3-dbus:
    /usr/bin/python3 policy/tools/differential.py > policy/differential-cases.txt
Every dbus-daemon it starts listens in a private temporary directory and is killed before it exits.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import dbus

BASE = """<policy context="default"><allow user="*"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/></policy>
<policy user="1"><allow own="*"/></policy>
<policy user="2"><allow own_prefix="org.sender"/></policy>"""

SYSTEM_DEFAULT = """<policy context="default">
  <deny own="*"/>
  <deny send_type="method_call"/>
  <allow send_type="signal"/>
  <allow send_requested_reply="true" send_type="method_return"/>
  <allow send_requested_reply="true" send_type="error"/>
  <allow receive_type="method_call"/>
  <allow receive_type="method_return"/>
  <allow receive_type="error"/>
  <allow receive_type="signal"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Containers1"/>
  <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
  <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
</policy>
<policy user="root">
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
</policy>"""

CONFIGS = {
    # The system bus with one service installed the way dbus-daemon(1) recommends, plus per-user/group holes.
    "system": SYSTEM_DEFAULT + """
<policy user="1"><allow own="org.example.Svc"/></policy>
<policy context="default">
  <allow send_destination="org.example.Svc" send_interface="org.example.Svc.Public"/>
  <allow send_destination="org.example.Svc" send_interface="org.freedesktop.DBus.Introspectable"/>
  <deny send_destination="org.example.Svc" send_interface="org.example.Svc.Public" send_member="Reboot"/>
</policy>
<policy user="2"><allow send_destination="org.example.Svc"/></policy>
<policy group="3"><allow send_destination="org.example.Svc" send_interface="org.example.Svc.Admin"/></policy>
<policy user="65534"><deny send_destination="org.example.Svc" send_path="/org/example/Svc/Private"/></policy>""",
    # The session bus, with the forbidding.conf exceptions.
    "session": """<policy context="default">
  <allow send_destination="*" eavesdrop="true"/>
  <allow eavesdrop="true"/>
  <allow own="*"/>
  <deny send_interface="com.example.CannotSend"/>
  <deny send_interface="com.example.CannotUnicast" send_broadcast="false"/>
  <deny send_interface="com.example.CannotBroadcast" send_broadcast="true"/>
  <deny receive_interface="com.example.CannotReceive"/>
  <deny send_destination="com.example.Closed"/>
</policy>""",
    # dbus-tests' send-destination-prefix-rules.conf, second policy, verbatim in substance.
    "prefix": SYSTEM_DEFAULT + """
<policy context="default">
  <deny send_destination_prefix="foo.bar.test"/>
  <allow own_prefix="foo.bar.test.dest_prefix"/>
  <allow send_destination_prefix="foo.bar.test.dest_prefix.ap"/>
  <allow send_destination="foo.bar.test.dest_prefix.ao"/>
  <deny send_destination="foo.bar.test.dest_prefix.ap.f1.d"/>
  <deny send_destination_prefix="foo.bar.test.dest_prefix.ap.f1.dp"/>
  <allow send_destination_prefix="foo.bar.test.dest_prefix.ap.f1.d.ap"/>
  <allow send_destination_prefix="foo.bar.test.dest_prefix.ap.f1.dp.ap"/>
  <allow send_destination="foo.bar.test.dest_prefix.ap.f1.dp.a"/>
  <deny send_destination_prefix="foo.bar.test.dest_prefix.dp"/>
  <allow send_destination="foo.bar.test.dest_prefix.dp.f1.a"/>
  <allow send_destination_prefix="foo.bar.test.dest_prefix.dp.f1.ap"/>
  <deny send_destination_prefix="foo.bar.test.dest_prefix.dp.f1.ap.dp"/>
  <deny send_destination_prefix="foo.bar.test.dest_prefix.ap.m" send_interface="foo.bar.a" send_member="CallDeny"/>
  <deny send_destination_prefix="foo.bar.test.dest_prefix.ap.m" send_interface="foo.bar.d"/>
  <allow send_destination_prefix="foo.bar.test.dest_prefix.ap.m" send_interface="foo.bar.d" send_member="CallAllow"/>
</policy>""",
    # Context order: default < group < user < at_console(false here) < mandatory.
    "contexts": """<policy context="default">
  <allow receive_type="*"/>
  <allow send_destination="org.example.Ctx"/>
  <deny send_destination="org.example.Ctx" send_interface="org.example.Ctx.G"/>
  <deny send_destination="org.example.Ctx" send_interface="org.example.Ctx.U"/>
  <allow own="org.example.Own.Default"/>
  <deny own="org.example.Own.Group"/>
</policy>
<policy group="3">
  <allow send_destination="org.example.Ctx" send_interface="org.example.Ctx.G"/>
  <deny send_destination="org.example.Ctx" send_interface="org.example.Ctx.U"/>
  <allow own="org.example.Own.Group"/>
  <deny own="org.example.Own.User"/>
</policy>
<policy user="3">
  <allow send_destination="org.example.Ctx" send_interface="org.example.Ctx.U"/>
  <allow own="org.example.Own.User"/>
  <deny send_destination="org.example.Ctx" send_interface="org.example.Ctx.Console"/>
</policy>
<policy at_console="false">
  <allow send_destination="org.example.Ctx" send_interface="org.example.Ctx.Console"/>
  <allow own="org.example.Own.NotConsole"/>
</policy>
<policy at_console="true">
  <allow own="org.example.Own.Console"/>
</policy>
<policy context="mandatory">
  <deny send_destination="org.example.Ctx" send_interface="org.example.Ctx.Mandatory"/>
  <deny own="org.example.Own.Mandatory"/>
</policy>
<policy user="3"><allow own="org.example.Own.Mandatory"/><allow send_destination="org.example.Ctx" send_interface="org.example.Ctx.Mandatory"/></policy>""",
    # Interface is optional in messages: allow rules with an interface skip them, deny rules catch them.
    "interface": """<policy context="default">
  <allow receive_type="*"/>
  <allow send_destination="org.example.Open"/>
  <deny send_destination="org.example.Open" send_interface="org.example.Open.Secret"/>
  <allow send_destination="org.example.Narrow" send_interface="org.example.Narrow.I"/>
  <allow send_destination="org.example.Path" send_path="/allowed"/>
  <allow send_destination="org.example.Member" send_interface="org.example.Member.I" send_member="Yes"/>
  <allow send_destination="org.example.Type" send_type="method_call"/>
  <deny send_destination="org.example.Type" send_type="signal"/>
</policy>""",
    # Owning names.
    "own": """<policy context="default">
  <allow receive_type="*"/>
  <allow own="*"/>
  <deny own="org.example.Nobody"/>
  <deny own_prefix="org.example.Reserved"/>
  <allow own="org.example.Reserved.Public"/>
  <deny own="org.example.Root"/>
</policy>
<policy user="0"><allow own="org.example.Root"/></policy>
<policy group="2"><deny own_prefix="org.example.NoBin"/></policy>
<policy user="2"><allow own="org.example.NoBin.Except"/></policy>
<policy context="mandatory"><deny own="org.example.Never"/></policy>""",
    # Receive rules of the receiver (uid 1), matching the sender's names.
    "receive": """<policy context="default">
  <allow send_destination="*"/>
  <allow receive_sender="*"/>
  <deny receive_interface="org.example.NoRecv"/>
  <deny receive_interface="org.example.Member" receive_member="Blocked"/>
  <deny receive_sender="org.sender.Bad"/>
  <deny receive_path="/no/receive"/>
</policy>
<policy user="1">
  <allow receive_interface="org.example.Member" receive_member="Blocked"/>
</policy>""",
    # Send rules matched against every name the receiver owns.
    "multiname": """<policy context="default">
  <allow receive_type="*"/>
  <allow send_destination="*"/>
  <deny send_destination="org.example.Banned"/>
  <allow send_destination="org.example.Vip"/>
</policy>""",
    # session.conf's policy exactly.
    "plainsession": """<policy context="default">
  <allow send_destination="*" eavesdrop="true"/>
  <allow eavesdrop="true"/>
  <allow own="*"/>
</policy>""",
    # dbus-daemon's bus_client_policy_optimize() drops every earlier rule of a kind when a later rule of that
    # kind names no type/path/interface/member/error/name, even if send_broadcast, min_fds/max_fds or
    # eavesdrop restrict it. These users get such rules; their calls to the driver show the effect.
    "optimize": """<policy context="default"><allow receive_type="*"/></policy>
<policy user="65534"><deny send_broadcast="true"/></policy>
<policy user="3"><deny send_type="*" min_fds="1"/></policy>
<policy user="2"><deny eavesdrop="true"/></policy>
<policy user="1"><deny receive_type="*" max_fds="3"/></policy>""",
    # A deny-everything bus with mandatory holes.
    "lockdown": """<policy context="default">
  <allow receive_type="*"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
</policy>
<policy context="mandatory">
  <allow send_destination="org.example.Hole" send_interface="org.example.Hole.I"/>
  <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="ListNames"/>
</policy>""",
}

UIDS = [0, 1, 2, 3, 65534]


def probes():
    """(kind, config, fields...) without expectation, for the daemon-checked kinds."""
    out = []
    # ---- own
    for uid in [0, 2, 3, 65534]:
        for name in ["org.example.Svc", "org.example.Other", "com.example.X"]:
            out.append(("own", "system", uid, name))
        for name in ["org.example.Anything", "org.example.Nobody", "org.example.Reserved",
                     "org.example.Reserved.Sub", "org.example.Reserved.Public", "org.example.ReservedX",
                     "org.example.Root", "org.example.NoBin", "org.example.NoBin.Except", "org.example.Never"]:
            out.append(("own", "own", uid, name))
        for name in ["org.example.Own.Default", "org.example.Own.Group", "org.example.Own.User",
                     "org.example.Own.NotConsole", "org.example.Own.Console", "org.example.Own.Mandatory"]:
            out.append(("own", "contexts", uid, name))
        for name in ["foo.bar.test.dest_prefix", "foo.bar.test.dest_prefix.x.y", "foo.bar.test.dest_prefixx"]:
            out.append(("own", "prefix", uid, name))
    # ---- calls between clients: receiver is uid 1
    svc = "org.example.Svc"
    for uid in [0, 2, 3, 65534]:
        for iface, member, path in [("org.example.Svc.Public", "Get", "/org/example/Svc"),
                                    ("org.example.Svc.Public", "Reboot", "/org/example/Svc"),
                                    ("org.example.Svc.Admin", "Set", "/org/example/Svc"),
                                    ("org.freedesktop.DBus.Introspectable", "Introspect", "/"),
                                    ("org.example.Svc.Public", "Get", "/org/example/Svc/Private"),
                                    ("org.example.Other", "Get", "/")]:
            out.append(("call", "system", uid, "-", 1, svc, svc, iface, member, path))
        for iface in ["org.example.Ctx.Plain", "org.example.Ctx.G", "org.example.Ctx.U",
                      "org.example.Ctx.Console", "org.example.Ctx.Mandatory"]:
            out.append(("call", "contexts", uid, "-", 1, "org.example.Ctx", "org.example.Ctx", iface, "M", "/"))
    prefix_names = [
        "foo.bar.test.dest_prefix.ap", "foo.bar.test.dest_prefix.ap.x", "foo.bar.test.dest_prefix.apx",
        "foo.bar.test.dest_prefix.ao", "foo.bar.test.dest_prefix.ao.x", "foo.bar.test.dest_prefix.ap.f1.d",
        "foo.bar.test.dest_prefix.ap.f1.d.x", "foo.bar.test.dest_prefix.ap.f1.d.ap.x",
        "foo.bar.test.dest_prefix.ap.f1.dp", "foo.bar.test.dest_prefix.ap.f1.dp.x",
        "foo.bar.test.dest_prefix.ap.f1.dp.a", "foo.bar.test.dest_prefix.ap.f1.dp.ap.x",
        "foo.bar.test.dest_prefix.dp", "foo.bar.test.dest_prefix.dp.x", "foo.bar.test.dest_prefix.dp.f1.a",
        "foo.bar.test.dest_prefix.dp.f1.ap", "foo.bar.test.dest_prefix.dp.f1.ap.x",
        "foo.bar.test.dest_prefix.dp.f1.ap.dp.x", "foo.bar.test.dest_prefix.other", "foo.bar.test",
    ]
    for name in prefix_names:
        out.append(("call", "prefix", 2, "-", 1, name, name, "foo.bar.x", "Call", "/"))
    for iface, member in [("foo.bar.a", "CallDeny"), ("foo.bar.a", "CallAllow"), ("foo.bar.d", "CallDeny"),
                          ("foo.bar.d", "CallAllow"), ("foo.bar.x", "Call")]:
        name = "foo.bar.test.dest_prefix.ap.m"
        out.append(("call", "prefix", 2, "-", 1, name, name, iface, member, "/"))
    for uid in [2, 65534]:
        for iface, member, path in [("org.example.X", "M", "/"), ("com.example.CannotSend", "M", "/"),
                                    ("com.example.CannotUnicast", "M", "/"),
                                    ("com.example.CannotBroadcast", "M", "/"),
                                    ("com.example.CannotReceive", "M", "/"), ("-", "M", "/")]:
            out.append(("call", "session", uid, "-", 1, "org.example.Dest", "org.example.Dest", iface, member, path))
        out.append(("call", "session", uid, "-", 1, "com.example.Closed", "com.example.Closed", "org.example.X", "M", "/"))
        out.append(("call", "session", uid, "-", 1, "org.example.Dest,com.example.Closed", "org.example.Dest", "org.example.X", "M", "/"))
    for dest, iface, member, path in [
            ("org.example.Open", "org.example.Open.I", "M", "/"), ("org.example.Open", "-", "M", "/"),
            ("org.example.Open", "org.example.Open.Secret", "M", "/"), ("org.example.Narrow", "org.example.Narrow.I", "M", "/"),
            ("org.example.Narrow", "-", "M", "/"), ("org.example.Narrow", "org.example.Narrow.J", "M", "/"),
            ("org.example.Path", "org.example.Path.I", "M", "/allowed"), ("org.example.Path", "-", "M", "/allowed"),
            ("org.example.Path", "org.example.Path.I", "M", "/other"), ("org.example.Member", "org.example.Member.I", "Yes", "/"),
            ("org.example.Member", "org.example.Member.I", "No", "/"), ("org.example.Member", "-", "Yes", "/"),
            ("org.example.Type", "org.example.Type.I", "M", "/")]:
        out.append(("call", "interface", 65534, "-", 1, dest, dest, iface, member, path))
    for snames in ["-", "org.sender.Good", "org.sender.Bad", "org.sender.Good,org.sender.Bad"]:
        for iface, member, path in [("org.example.I", "M", "/"), ("org.example.NoRecv", "M", "/"),
                                    ("org.example.Member", "Blocked", "/"), ("org.example.Member", "Other", "/"),
                                    ("org.example.I", "M", "/no/receive")]:
            out.append(("call", "receive", 2, snames, 1, "org.example.Recv", "org.example.Recv", iface, member, path))
    for uid in [2, 3]:
        for names, dest in [("org.example.A", "org.example.A"), ("org.example.A,org.example.Banned", "org.example.A"),
                            ("org.example.Banned", "org.example.Banned"), ("org.example.Banned,org.example.Vip", "org.example.Banned"),
                            ("org.example.Vip,org.example.Banned", "org.example.Vip")]:
            out.append(("call", "multiname", uid, "-", 1, names, dest, "org.example.I", "M", "/"))
    for uid in [0, 2]:
        for dest, iface in [("org.example.Hole", "org.example.Hole.I"), ("org.example.Hole", "org.example.Hole.J"),
                            ("org.example.Else", "org.example.Hole.I")]:
            out.append(("call", "lockdown", uid, "-", 1, dest, dest, iface, "M", "/"))
    for uid in UIDS:
        out.append(("driver", "optimize", uid, "org.freedesktop.DBus", "GetId", "/org/freedesktop/DBus"))
    # ---- calls to the bus driver
    driver_calls = [("org.freedesktop.DBus", "GetId"), ("org.freedesktop.DBus", "UpdateActivationEnvironment"),
                    ("org.freedesktop.DBus", "ListNames"), ("org.freedesktop.DBus.Introspectable", "Introspect"),
                    ("org.freedesktop.DBus.Properties", "GetAll"), ("org.freedesktop.DBus.Debug.Stats", "GetStats"),
                    ("org.freedesktop.DBus.Monitoring", "BecomeMonitor"), ("org.freedesktop.systemd1.Activator", "ActivationFailure"),
                    ("org.freedesktop.DBus.Peer", "Ping"), ("-", "GetId")]
    for uid in [0, 2]:
        for iface, member in driver_calls:
            out.append(("driver", "system", uid, iface, member, "/org/freedesktop/DBus"))
        for iface, member in driver_calls[:3]:
            out.append(("driver", "lockdown", uid, iface, member, "/org/freedesktop/DBus"))
    return out


# Probes whose expectation comes from dbus-daemon(1) / bus/policy.c rather than from running dbus-daemon:
# dbus-python cannot read signals or answer calls without a main loop.
DOC_CASES = """
# Broadcast and unicast signals (system: signals are allowed by default; session: send_broadcast rules).
signal system 2 - 1 - - org.example.Sig Changed / allow doc
signal system 2 - 1 org.example.Svc org.example.Svc org.example.Sig Changed / allow doc
signal session 2 - 1 - - com.example.CannotBroadcast S / deny doc
signal session 2 - 1 org.example.Dest org.example.Dest com.example.CannotBroadcast S / allow doc
signal session 2 - 1 - - com.example.CannotUnicast S / allow doc
signal session 2 - 1 org.example.Dest org.example.Dest com.example.CannotUnicast S / deny doc
signal session 2 - 1 - - com.example.CannotSend S / deny doc
signal session 2 - 1 - - com.example.CannotReceive S / deny doc
signal receive 2 org.sender.Bad 1 - - org.example.I S / deny doc
signal receive 2 org.sender.Good 1 - - org.example.I S / allow doc
signal interface 2 - 1 org.example.Type org.example.Type org.example.Type.I S / deny doc
signal contexts 2 - 1 - - org.example.Ctx.Plain S / deny doc
# Replies: requested ones pass system.conf's default policy, unrequested ones do not; session.conf's
# eavesdrop="true" allow rule lets unrequested replies through.
reply system 1 2 requested method_return allow doc
reply system 1 2 unrequested method_return deny doc
reply system 1 2 requested error allow doc
reply system 1 2 unrequested error deny doc
reply plainsession 1 2 requested method_return allow doc
reply plainsession 1 2 unrequested method_return allow doc
# ... but "session" also has <deny receive_interface="com.example.CannotReceive"/>, and a deny rule naming an
# interface matches messages without one (replies), for unrequested replies (deny's requested_reply="false").
reply session 1 2 requested method_return allow doc
reply session 1 2 unrequested method_return deny doc
reply interface 1 2 requested method_return deny doc
reply multiname 1 2 requested method_return allow doc
reply multiname 1 2 unrequested method_return deny doc
reply receive 1 2 unrequested error deny doc
# Eavesdropping: system.conf's receive rules have no eavesdrop="true"; session.conf's do.
eavesdrop system 2 0 org.example.Svc org.example.Svc.Public Get deny doc
eavesdrop plainsession 2 0 org.example.Dest org.example.X M allow doc
eavesdrop session 2 0 org.example.Dest org.example.X M allow doc
# For an eavesdropper, dbus-daemon checks the sender's send rules against the eavesdropper's names
# (proposed_recipient), so send_destination="com.example.Closed" does not match: the eavesdrop check alone
# allows it (the addressed recipient's own check refuses the message first).
eavesdrop session 2 0 com.example.Closed org.example.X M allow doc
eavesdrop multiname 2 0 org.example.A org.example.I M deny doc
eavesdrop receive 2 0 org.example.Recv org.example.I M deny doc
"""


def run_as(uid, function):
    """Runs function() in a child with the given uid; returns what it printed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            import pwd
            entry = pwd.getpwuid(uid)
            os.setgroups(os.getgrouplist(entry.pw_name, entry.pw_gid))
            os.setgid(entry.pw_gid)
            os.setuid(uid)
            result = function(write_end)
        except Exception as error:  # noqa: BLE001
            result = "error " + repr(error)
        if result is not None:
            os.write(write_end, result.encode())
        os._exit(0)
    os.close(write_end)
    return pid, read_end


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def classify(error):
    # Only the policy's own rejections count; the driver refuses some calls itself (e.g.
    # UpdateActivationEnvironment from an unprivileged uid) after the policy let them through.
    name = error.get_dbus_name()
    text = str(error)
    if name == "org.freedesktop.DBus.Error.AccessDenied" and (
            "Rejected send message" in text or "Rejected receive message" in text):
        return "deny"
    return "allow"


def probe(address, case):
    kind, config = case[0], case[1]
    if kind == "own":
        uid, name = case[2], case[3]

        def own(_fd):
            bus = dbus.bus.BusConnection(address)
            try:
                bus.request_name(name, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
                return "allow"
            except dbus.exceptions.DBusException as error:
                if "not allowed to own" in str(error):
                    return "deny"
                return "error " + str(error)
        pid, fd = run_as(uid, own)
        result = read_all(fd)
        os.waitpid(pid, 0)
        return result
    if kind == "driver":
        uid, interface, member, path = case[2], case[3], case[4], case[5]

        # The driver always answers: no answer means the receive policy dropped its reply (or Hello's).
        def call(_fd):
            try:
                bus = dbus.bus.BusConnection(address)
                bus.call_blocking("org.freedesktop.DBus", path, None if interface == "-" else interface, member,
                                  "", (), timeout=1)
                return "allow"
            except dbus.exceptions.DBusException as error:
                if error.get_dbus_name() == "org.freedesktop.DBus.Error.NoReply":
                    return "deny"
                return classify(error)
        pid, fd = run_as(uid, call)
        result = read_all(fd)
        os.waitpid(pid, 0)
        return result
    if kind == "call":
        suid, snames, ruid, rnames, dest, interface, member, path = case[2:10]

        def receiver(fd):
            bus = dbus.bus.BusConnection(address)
            for name in rnames.split(","):
                bus.request_name(name, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
            os.write(fd, b"ready")
            time.sleep(30)
            return None
        rpid, rfd = run_as(ruid, receiver)
        ready = os.read(rfd, 5)
        if ready != b"ready":
            os.kill(rpid, signal.SIGKILL)
            os.waitpid(rpid, 0)
            return "error receiver " + ready.decode() + read_all(rfd)

        def sender(_fd):
            bus = dbus.bus.BusConnection(address)
            if snames != "-":
                for name in snames.split(","):
                    bus.request_name(name, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
            try:
                bus.call_blocking(dest, path, None if interface == "-" else interface, member, "", (), timeout=0.4)
                return "allow"
            except dbus.exceptions.DBusException as error:
                return classify(error)
        spid, sfd = run_as(suid, sender)
        result = read_all(sfd)
        os.waitpid(spid, 0)
        os.kill(rpid, signal.SIGKILL)
        os.waitpid(rpid, 0)
        os.close(rfd)
        return result
    raise ValueError(kind)


def config_text(name):
    return BASE + "\n" + CONFIGS[name]


def main():
    cases = probes()
    results = {}
    tmp = tempfile.mkdtemp(prefix="busgate-differential-")
    os.chmod(tmp, 0o755)
    try:
        for config in CONFIGS:
            path = os.path.join(tmp, config + ".conf")
            socket = os.path.join(tmp, config + ".socket")
            with open(path, "w") as file:
                file.write("<busconfig><listen>unix:path=%s</listen>\n%s\n</busconfig>\n" % (socket, config_text(config)))
            daemon = subprocess.Popen(["dbus-daemon", "--config-file=" + path, "--nofork", "--nopidfile",
                                       "--print-address"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                address = daemon.stdout.readline().decode().strip()
                os.chmod(socket, 0o777)
                for case in cases:
                    if case[1] == config:
                        results[case] = probe(address, case)
            finally:
                daemon.kill()
                daemon.wait()
    finally:
        shutil.rmtree(tmp)

    out = sys.stdout
    out.write("# Generated by policy/tools/differential.py; do not edit by hand.\n")
    out.write("# Each configuration below is a <busconfig> body (listen added by the reader).\n")
    out.write("# source dbus-daemon: decided by running dbus-daemon 1.14.10 (Debian) on this configuration with\n")
    out.write("#   real clients under those uids; source doc: derived from dbus-daemon(1) and bus/policy.c.\n")
    for config in CONFIGS:
        out.write("\nconfig %s\n%s\nend\n" % (config, config_text(config)))
    out.write("\n")
    for case in cases:
        result = results[case]
        if result not in ("allow", "deny"):
            sys.stderr.write("probe failed: %r -> %s\n" % (case, result))
            continue
        out.write(" ".join(str(field) for field in case) + " " + result + " dbus-daemon\n")
    out.write(DOC_CASES)


if __name__ == "__main__":
    main()
