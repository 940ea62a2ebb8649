#include <algorithm>

#include "base/strings.h"
#include "http/server.h"

namespace fjord::http {

struct Router::Route {
  enum class SegKind { kLiteral, kParam, kRest };
  struct Segment {
    SegKind kind;
    std::string text;  // the literal, or the parameter name
  };
  std::string method;
  std::string pattern;
  std::vector<Segment> segments;
  Handler handler;
  Dispatch dispatch;
};

Router::Router() = default;
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

base::Status Router::Add(std::string_view method, std::string_view pattern, Handler handler,
                         Dispatch dispatch) {
  auto fail = [&](std::string_view why) {
    return base::InvalidArgument("route " + std::string(method) + " " + std::string(pattern) +
                                 ": " + std::string(why));
  };
  if (method.empty()) return fail("empty method");
  if (pattern.empty() || pattern.front() != '/') return fail("pattern must start with '/'");
  if (!handler) return fail("no handler");
  auto route = std::make_unique<Route>();
  route->method = std::string(method);
  route->pattern = std::string(pattern);
  route->handler = std::move(handler);
  route->dispatch = dispatch;
  std::vector<std::string> parts = base::Split(pattern.substr(1), '/');
  if (parts.size() == 1 && parts[0].empty()) parts.clear();  // "/"
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p == "*") {
      if (i + 1 != parts.size()) return fail("'*' must be the last segment");
      route->segments.push_back({Route::SegKind::kRest, "*"});
    } else if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
      std::string name = p.substr(1, p.size() - 2);
      if (name.empty() || name.find_first_of("{}") != std::string::npos) {
        return fail("bad parameter segment `" + p + "`");
      }
      route->segments.push_back({Route::SegKind::kParam, name});
    } else if (p.empty()) {
      return fail("empty segment");
    } else if (p.find_first_of("{}*") != std::string::npos) {
      return fail("segment `" + p + "` mixes text with '{', '}' or '*'");
    } else {
      route->segments.push_back({Route::SegKind::kLiteral, p});
    }
  }
  for (const auto& r : routes_) {
    if (r->method == route->method && r->pattern == route->pattern) return fail("duplicate route");
  }
  routes_.push_back(std::move(route));
  return base::Status::Ok();
}

base::Status Router::AddSync(std::string_view method, std::string_view pattern, SyncHandler handler,
                             Dispatch dispatch) {
  if (!handler) return Add(method, pattern, nullptr, dispatch);
  return Add(
      method, pattern,
      [h = std::move(handler)](const Request& req, Responder r) { r.Respond(h(req)); }, dispatch);
}

namespace {

// Specificity rank of one segment kind, for choosing between overlapping patterns.
int Rank(int kind) { return 2 - kind; }  // literal 2, param 1, rest 0

}  // namespace

Router::Match Router::Resolve(std::string_view method,
                              const std::vector<std::string>& segments) const {
  Match best;
  std::vector<int> best_score;
  std::vector<std::string> allowed;
  for (const auto& route : routes_) {
    std::vector<int> score;
    std::map<std::string, std::string, std::less<>> params;
    bool ok = true;
    size_t i = 0;
    for (const auto& seg : route->segments) {
      score.push_back(Rank(static_cast<int>(seg.kind)));
      if (seg.kind == Route::SegKind::kRest) {
        std::string rest;
        for (size_t j = i; j < segments.size(); ++j) {
          if (j > i) rest += '/';
          rest += segments[j];
        }
        params["*"] = std::move(rest);
        i = segments.size();
        break;
      }
      if (i >= segments.size()) {
        ok = false;
        break;
      }
      if (seg.kind == Route::SegKind::kLiteral) {
        ok = seg.text == segments[i];
      } else {
        ok = !segments[i].empty();
        params[seg.text] = segments[i];
      }
      if (!ok) break;
      ++i;
    }
    if (!ok || i != segments.size()) continue;
    if (route->method != method) {
      allowed.push_back(route->method);
      continue;
    }
    if (best.kind != Match::kFound || score > best_score) {
      best.kind = Match::kFound;
      best.handler = &route->handler;
      best.dispatch = route->dispatch;
      best.params = std::move(params);
      best_score = std::move(score);
    }
  }
  if (best.kind != Match::kFound && !allowed.empty()) {
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    best.kind = Match::kMethodNotAllowed;
    best.allowed = std::move(allowed);
  }
  return best;
}

base::Result<std::vector<std::string>> SplitPath(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return base::InvalidArgument("request path " + base::QuoteForDisplay(path) +
                                 " must start with '/'");
  }
  std::vector<std::string> out;
  if (path == "/") return out;
  size_t start = 1;
  while (true) {
    size_t end = path.find('/', start);
    std::string_view raw = path.substr(start, end == std::string_view::npos ? end : end - start);
    auto seg = PercentDecode(raw);
    if (!seg.ok()) return seg.status().Wrap("request path");
    if (seg->find('\0') != std::string::npos) {
      return base::InvalidArgument("request path " + base::QuoteForDisplay(path) +
                                   " contains a NUL byte");
    }
    out.push_back(std::move(*seg));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace fjord::http
