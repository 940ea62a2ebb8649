// Test helpers for the http module: a raw TCP connection to speak (and misspeak) HTTP by hand,
// and a deadline wait. Private to this module's tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "base/fd.h"

namespace fjord::http::testing {

// Polls `cond` until true or `timeout`; returns its last value.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class RawConn {
 public:
  explicit RawConn(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  bool connected() const { return connected_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads until the peer closes or `timeout` passes; returns everything read.
  std::string ReadUntilClose(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::string out = std::move(pending_);
    pending_.clear();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (ReadSome(out, deadline) > 0) {
    }
    return out;
  }

  // Reads one response with a Content-Length body (or none); leaves later bytes buffered.
  // Empty on timeout or close before a full response.
  std::string ReadResponse(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string& buf = pending_;
    for (;;) {
      size_t end = buf.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t body_len = 0;
        std::string head = buf.substr(0, end);
        for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (size_t p = head.find("content-length:"); p != std::string::npos) {
          body_len = std::stoul(head.substr(p + 15));
        }
        size_t total = end + 4 + body_len;
        if (buf.size() >= total) {
          std::string out = buf.substr(0, total);
          buf.erase(0, total);
          return out;
        }
      }
      if (ReadSome(buf, deadline) <= 0) return {};
    }
  }

  // True once the peer has closed the connection (EOF), waiting up to `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string sink;
    for (;;) {
      ssize_t n = ReadSome(sink, deadline);
      if (n == 0) return true;
      if (n < 0) return false;
    }
  }

  void Close() { fd_.reset(); }

 private:
  // >0 bytes read, 0 on EOF, -1 on timeout or error.
  ssize_t ReadSome(std::string& out, std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return -1;
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    return n < 0 ? (errno == ECONNRESET ? 0 : -1) : n;
  }

  base::UniqueFd fd_;
  bool connected_ = false;
  std::string pending_;
};

}  // namespace fjord::http::testing
