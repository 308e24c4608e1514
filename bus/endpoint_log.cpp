// busgate-dbus-proxy --log: what xdg-dbus-proxy prints of a sandbox's traffic, in its form, from the bus's
// own view of each message and its verdict. The lines go to the endpoint's creator as unicast signals
// org.busgate.Endpoints1.Log(s endpoint, s line), from the driver.
#include "bus/endpoint_log.h"

#include <string>

namespace busgate::bus {
namespace {

std::string or_text(std::string_view value, std::string_view otherwise) {
    return std::string(value.empty() ? otherwise : value);
}

}  // namespace

std::string outgoing_log_line(const marshal::MessageHeader& header) {
    const std::string serial = "C" + std::to_string(header.serial) + ": -> ";
    switch (header.type) {
        case marshal::MessageType::method_call:
            return serial + or_text(header.destination, "(no dest)") + " call " +
                   std::string(header.interface) + "." + std::string(header.member) + " at " +
                   std::string(header.path);
        case marshal::MessageType::method_return:
            return serial + or_text(header.destination, "(no dest)") + " return from B" +
                   std::to_string(header.reply_serial);
        case marshal::MessageType::error:
            return serial + or_text(header.destination, "(no dest)") + " return error " +
                   or_text(header.error_name, "(no error)") + " from B" + std::to_string(header.reply_serial);
        case marshal::MessageType::signal:
            return serial + or_text(header.destination, "all") + " signal " + std::string(header.interface) +
                   "." + std::string(header.member) + " at " + std::string(header.path);
        default:
            return "unknown message type";
    }
}

std::string incoming_log_line(const marshal::MessageHeader& header) {
    const std::string serial = "B" + std::to_string(header.serial) + ": <- ";
    const std::string sender = or_text(header.sender, "(no sender)");
    switch (header.type) {
        case marshal::MessageType::method_call:
            return serial + sender + " call " + std::string(header.interface) + "." +
                   std::string(header.member) + " at " + std::string(header.path);
        case marshal::MessageType::method_return:
            return serial + sender + " return from C" + std::to_string(header.reply_serial);
        case marshal::MessageType::error:
            return serial + sender + " return error " + or_text(header.error_name, "(no error)") + " from C" +
                   std::to_string(header.reply_serial);
        case marshal::MessageType::signal:
            return serial + sender + " signal " + std::string(header.interface) + "." +
                   std::string(header.member) + " at " + std::string(header.path);
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
    return std::string(verdict) + (refused.expects_reply() ? " (ping)" : "");
}

}  // namespace busgate::bus
