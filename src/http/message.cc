// Request/Response helpers that need no Beast.
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "http/server.h"

namespace fjord::http {

std::string_view FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && base::AsciiLower(k) == base::AsciiLower(name)) return v;
  }
  return {};
}

std::string_view Request::Param(std::string_view name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}

Response Response::Json(int status, std::string json_body) {
  return Response{status, "application/json", std::move(json_body), {}};
}

Response Response::Text(int status, std::string text) {
  return Response{status, "text/plain; charset=utf-8", std::move(text), {}};
}

Response Response::Empty(int status) { return Response{status, "", "", {}}; }

std::string JsonErrorBody(int code, std::string_view message, std::string_view field) {
  nlohmann::json error = {{"code", code}, {"message", std::string(message)}};
  if (!field.empty()) error["field"] = std::string(field);
  // Replace invalid UTF-8 rather than throw: messages may quote bytes from a bad request.
  return nlohmann::json{{"error", std::move(error)}}.dump(-1, ' ', false,
                                                          nlohmann::json::error_handler_t::replace);
}

Response JsonError(int code, std::string_view message, std::string_view field) {
  return Response::Json(code, JsonErrorBody(code, message, field));
}

}  // namespace fjord::http
