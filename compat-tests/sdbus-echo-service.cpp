// A small sdbus-c++ service for the client compatibility tests: owns org.example.Echo (or the name given
// as its argument), answers Echo(s) -> s, and emits Echoed(s) after each call. Uses the bus in
// DBUS_SESSION_BUS_ADDRESS.
#include <sdbus-c++/sdbus-c++.h>

#include <string>

int main(int argc, char** argv) {
    auto connection = sdbus::createSessionBusConnection(argc > 1 ? argv[1] : "org.example.Echo");
    auto object = sdbus::createObject(*connection, "/org/example/Echo");
    sdbus::IObject* exported = object.get();
    object->registerMethod("Echo")
        .onInterface("org.example.Echo")
        .implementedAs([exported](const std::string& text) {
            exported->emitSignal("Echoed").onInterface("org.example.Echo").withArguments(text);
            return text;
        });
    object->registerSignal("Echoed").onInterface("org.example.Echo").withParameters<std::string>();
    object->finishRegistration();
    connection->enterEventLoop();
}
