#pragma once
// Starts a private redis-server on a free 127.0.0.1 port for one test, and stops it (or kills it
// mid-run) on demand. No persistence, no other address.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace cascade::test {

inline std::uint16_t free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

inline bool port_accepts(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

class RedisServer {
public:
    RedisServer() : port_(free_loopback_port()) { start(); }
    RedisServer(RedisServer const&) = delete;
    RedisServer& operator=(RedisServer const&) = delete;
    ~RedisServer() { stop(); }

    std::uint16_t port() const noexcept { return port_; }

    // Starts the server again on the same port, after `kill` or `stop`; a no-op while it runs.
    void start() {
        if (pid_ > 0) return;
        std::string port = std::to_string(port_);
        std::vector<std::string> args{"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        // The server's own chatter stays out of the test output.
        posix_spawn_file_actions_t quiet;
        posix_spawn_file_actions_init(&quiet);
        posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
        int rc = ::posix_spawnp(&pid_, "redis-server", &quiet, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&quiet);
        if (rc != 0) throw std::runtime_error("cannot start redis-server: is the redis-server package installed?");
        for (int i = 0; i < 500 && !port_accepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!port_accepts(port_)) {
            stop();
            throw std::runtime_error("redis-server did not start listening on 127.0.0.1:" + port);
        }
    }

    // Freezes the server (SIGSTOP), as a hung one: the kernel still accepts connections, nothing answers.
    void pause() {
        if (pid_ > 0) ::kill(pid_, SIGSTOP);
    }
    void resume() {
        if (pid_ > 0) ::kill(pid_, SIGCONT);
    }

    // Kills the server at once (SIGKILL), as a crash would.
    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGCONT);  // a paused server would keep SIGTERM pending forever
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

private:
    std::uint16_t port_;
    pid_t pid_ = -1;
};

} // namespace cascade::test
