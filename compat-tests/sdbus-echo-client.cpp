// The sdbus-c++ client of sdbus-echo-service: subscribes to Echoed, calls Echo with its argument,
// and prints the reply and the signal, so the test can compare them with what it sent.
#include <sdbus-c++/sdbus-c++.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    const std::string text = argc > 1 ? argv[1] : "hello";
    auto connection = sdbus::createSessionBusConnection();
    connection->enterEventLoopAsync();
    auto proxy = sdbus::createProxy(*connection, "org.example.Echo", "/org/example/Echo");
    std::atomic<bool> signalled{false};
    std::string signal_text;
    proxy->uponSignal("Echoed").onInterface("org.example.Echo").call([&](const std::string& echoed) {
        signal_text = echoed;
        signalled = true;
    });
    proxy->finishRegistration();
    std::string reply;
    proxy->callMethod("Echo").onInterface("org.example.Echo").withArguments(text).storeResultsTo(reply);
    for (int i = 0; i < 200 && !signalled; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    connection->leaveEventLoop();
    std::cout << "reply " << reply << "\n"
              << "signal " << (signalled ? signal_text : "(none)") << "\n";
    return reply == text && signalled && signal_text == text ? 0 : 1;
}
