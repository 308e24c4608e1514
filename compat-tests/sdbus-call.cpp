// One method call through sdbus-c++ on the bus at DBUS_SESSION_BUS_ADDRESS, for test-dbus-proxy's client
// rows: prints "reply" or "error NAME".
// Usage: sdbus-call DESTINATION PATH INTERFACE METHOD
#include <sdbus-c++/sdbus-c++.h>

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "usage: sdbus-call DESTINATION PATH INTERFACE METHOD\n";
        return 2;
    }
    try {
        auto connection = sdbus::createSessionBusConnection();
        auto proxy = sdbus::createProxy(*connection, argv[1], argv[2]);
        proxy->callMethod(argv[4]).onInterface(argv[3]);
        std::cout << "reply\n";
    } catch (const sdbus::Error& error) {
        std::cout << "error " << error.getName() << "\n";
    }
    return 0;
}
