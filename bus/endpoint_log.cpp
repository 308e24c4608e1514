// busgate-dbus-proxy --log: what xdg-dbus-proxy prints of a sandbox's traffic, in its form, from the bus's
// own view of each message and its verdict. The lines go to the endpoint's creator as unicast signals
// org.busgate.Endpoints1.Log(s endpoint, s line), from the driver.
#include "bus/endpoint_log.h"

#include <initializer_list>
#include <string>
#include <string_view>

namespace busgate::bus {
namespace {

// Built with append throughout: GCC 12 at -O3 reports `"C" + std::to_string(...)` as an overlapping memcpy
// (-Wrestrict, a false positive), which breaks release builds.
std::string joined(std::initializer_list<std::string_view> parts) {
    std::string text;
    for (const std::string_view part : parts) {
        text.append(part);
    }
    return text;
}

std::string_view or_text(std::string_view value, std::string_view otherwise) {
    return value.empty() ? otherwise : value;
}

}  // namespace

std::string outgoing_log_line(const marshal::MessageHeader& header) {
    const std::string serial = std::to_string(header.serial);
    const std::string reply_serial = std::to_string(header.reply_serial);
    const std::string_view destination = or_text(header.destination, "(no dest)");
    switch (header.type) {
        case marshal::MessageType::method_call:
            return joined({"C", serial, ": -> ", destination, " call ", header.interface, ".", header.member,
                           " at ", header.path});
        case marshal::MessageType::method_return:
            return joined({"C", serial, ": -> ", destination, " return from B", reply_serial});
        case marshal::MessageType::error:
            return joined({"C", serial, ": -> ", destination, " return error ",
                           or_text(header.error_name, "(no error)"), " from B", reply_serial});
        case marshal::MessageType::signal:
            return joined({"C", serial, ": -> ", or_text(header.destination, "all"), " signal ",
                           header.interface, ".", header.member, " at ", header.path});
        default:
            return "unknown message type";
    }
}

std::string incoming_log_line(const marshal::MessageHeader& header) {
    const std::string serial = std::to_string(header.serial);
    const std::string reply_serial = std::to_string(header.reply_serial);
    const std::string_view sender = or_text(header.sender, "(no sender)");
    switch (header.type) {
        case marshal::MessageType::method_call:
            return joined({"B", serial, ": <- ", sender, " call ", header.interface, ".", header.member,
                           " at ", header.path});
        case marshal::MessageType::method_return:
            return joined({"B", serial, ": <- ", sender, " return from C", reply_serial});
        case marshal::MessageType::error:
            return joined({"B", serial, ": <- ", sender, " return error ",
                           or_text(header.error_name, "(no error)"), " from C", reply_serial});
        case marshal::MessageType::signal:
            return joined({"B", serial, ": <- ", sender, " signal ", header.interface, ".", header.member,
                           " at ", header.path});
        default:
            return "unknown message type";
    }
}

std::optional<std::string> verdict_log_line(std::string_view error_name,
                                            const marshal::MessageHeader& refused) {
    const char* verdict = nullptr;
    if (error_name == "org.freedesktop.DBus.Error.AccessDenied") {
        verdict = "*DENIED*";
    } else if (error_name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
               error_name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
        verdict = "*HIDDEN*";
    } else {
        return std::nullopt;  // not a filtering decision: the call's own answer, logged as it goes in
    }
    return joined({verdict, refused.expects_reply() ? " (ping)" : ""});
}

}  // namespace busgate::bus
