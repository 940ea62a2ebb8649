// The pure pieces around placement: request validation, constraint parsing, glob matching,
// scale plans and the rate-limited reschedule planner.
#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <regex>

#include "base/strings.h"
#include "scheduler/impl.h"

namespace fjord::scheduler {

using base::Result;
using base::Status;

// ---- Formatting ----

std::string FormatBytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (std::fabs(v) >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  if (v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

std::string FormatCpu(int64_t millis) { return std::to_string(millis) + "m"; }

std::string TemplateOf(std::string_view name) {
  size_t at = name.find('@');
  if (at == std::string_view::npos) return {};
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot <= at + 1) return {};
  std::string out(name.substr(0, at + 1));
  out += name.substr(dot);
  return out;
}

// ---- Glob ----

namespace {

// Matches one [class] at pat[*p] against c; advances *p past ']'. 1 match, 0 no, -1 malformed.
int MatchClass(std::string_view pat, size_t* p, char c) {
  size_t i = *p + 1;
  bool negate = i < pat.size() && (pat[i] == '^' || pat[i] == '!');
  if (negate) ++i;
  bool matched = false;
  bool first = true;
  while (i < pat.size() && (pat[i] != ']' || first)) {
    first = false;
    char lo = pat[i];
    if (lo == '\\' && i + 1 < pat.size()) lo = pat[++i];
    ++i;
    char hi = lo;
    if (i + 1 < pat.size() && pat[i] == '-' && pat[i + 1] != ']') {
      hi = pat[++i];
      if (hi == '\\' && i + 1 < pat.size()) hi = pat[++i];
      ++i;
    }
    if (lo <= c && c <= hi) matched = true;
  }
  if (i >= pat.size()) return -1;
  *p = i + 1;
  return matched != negate ? 1 : 0;
}

}  // namespace

bool HasGlobMeta(std::string_view pattern) {
  return pattern.find_first_of("*?[\\") != std::string_view::npos;
}

bool GlobMatch(std::string_view pat, std::string_view name) {
  size_t p = 0, n = 0;
  size_t star_p = std::string_view::npos, star_n = 0;
  while (n < name.size()) {
    if (p < pat.size()) {
      char pc = pat[p];
      if (pc == '*') {
        star_p = ++p;
        star_n = n;
        continue;
      }
      if (pc == '?') {
        if (name[n] != '/') {
          ++p;
          ++n;
          continue;
        }
      } else if (pc == '[') {
        size_t q = p;
        int r = MatchClass(pat, &q, name[n]);
        if (r < 0) return false;
        if (r == 1) {
          p = q;
          ++n;
          continue;
        }
      } else {
        size_t width = 1;
        if (pc == '\\' && p + 1 < pat.size()) {
          pc = pat[p + 1];
          width = 2;
        }
        if (pc == name[n]) {
          p += width;
          ++n;
          continue;
        }
      }
    }
    // Mismatch: let the last * absorb one more character (never a '/').
    if (star_p != std::string_view::npos && name[star_n] != '/') {
      p = star_p;
      n = ++star_n;
      continue;
    }
    return false;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

// ---- Constraints and validation ----

std::string_view OperatorName(Operator op) {
  switch (op) {
    case Operator::kUnique:
      return "UNIQUE";
    case Operator::kCluster:
      return "CLUSTER";
    case Operator::kGroupBy:
      return "GROUP_BY";
    case Operator::kLike:
      return "LIKE";
    case Operator::kUnlike:
      return "UNLIKE";
    case Operator::kMaxPer:
      return "MAX_PER";
  }
  return "?";
}

namespace {

bool ParseCount(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 9) return false;
  int64_t v = 0;
  for (char ch : s) {
    if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
    v = v * 10 + (ch - '0');
  }
  *out = v;
  return true;
}

}  // namespace

Result<AttributeConstraint> ParseConstraint(std::string_view text) {
  std::string shown = base::QuoteForDisplay(text);
  size_t c1 = text.find(':');
  if (c1 == std::string_view::npos || c1 == 0) {
    return base::InvalidArgument("constraint " + shown +
                                 ": expected attribute:OPERATOR[:value], e.g. zone:GROUP_BY");
  }
  size_t c2 = text.find(':', c1 + 1);
  std::string op = base::AsciiLower(
      text.substr(c1 + 1, c2 == std::string_view::npos ? std::string_view::npos : c2 - c1 - 1));
  std::string_view value = c2 == std::string_view::npos ? "" : text.substr(c2 + 1);
  bool has_value = c2 != std::string_view::npos;
  AttributeConstraint k;
  k.attribute = std::string(text.substr(0, c1));
  static const std::pair<const char*, Operator> kOps[] = {
      {"unique", Operator::kUnique},    {"cluster", Operator::kCluster},
      {"group_by", Operator::kGroupBy}, {"like", Operator::kLike},
      {"unlike", Operator::kUnlike},    {"max_per", Operator::kMaxPer}};
  bool known = false;
  for (const auto& [name, o] : kOps) {
    if (op == name) {
      k.op = o;
      known = true;
    }
  }
  if (!known) {
    return base::InvalidArgument("constraint " + shown + ": unknown operator `" + op +
                                 "` (use UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE or MAX_PER)");
  }
  switch (k.op) {
    case Operator::kUnique:
      if (has_value)
        return base::InvalidArgument("constraint " + shown + ": UNIQUE takes no value");
      break;
    case Operator::kGroupBy:
      if (has_value && !ParseCount(value, &k.count)) {
        return base::InvalidArgument("constraint " + shown +
                                     ": GROUP_BY takes an optional number of values");
      }
      break;
    case Operator::kMaxPer:
      if (!ParseCount(value, &k.count) || k.count < 1) {
        return base::InvalidArgument("constraint " + shown + ": MAX_PER needs a count >= 1");
      }
      break;
    case Operator::kLike:
    case Operator::kUnlike:
      if (!has_value || value.empty()) {
        return base::InvalidArgument("constraint " + shown + ": " +
                                     std::string(OperatorName(k.op)) + " needs a regex");
      }
      k.value = std::string(value);
      break;
    case Operator::kCluster:
      k.value = std::string(value);
      break;
  }
  return k;
}

Status ValidateShape(const TaskRequest& r) {
  if (r.name.empty()) return base::InvalidArgument("task request with an empty unit name");
  auto bad = [&](const std::string& what) {
    return base::InvalidArgument("unit `" + r.name + "`: " + what);
  };
  if (r.resources.cpu_millis < 0 || r.resources.memory_bytes < 0 || r.resources.disk_bytes < 0) {
    return bad("negative resource request");
  }
  for (size_t i = 0; i < r.ports.size(); ++i) {
    if (r.ports[i] == 0) return bad("port 0 is not a host port");
    for (size_t j = 0; j < i; ++j) {
      if (r.ports[i] == r.ports[j]) return bad("port " + std::to_string(r.ports[i]) + " twice");
    }
  }
  for (const MetadataRequirement& m : r.machine_metadata) {
    if (m.key.empty() || m.values.empty()) return bad("MachineMetadata needs key=value");
  }
  for (const AttributeConstraint& k : r.constraints) {
    std::string head = std::string(OperatorName(k.op)) + " " + k.attribute;
    if (k.attribute.empty()) return bad(std::string(OperatorName(k.op)) + ": empty attribute");
    if (k.op == Operator::kMaxPer && k.count < 1) return bad(head + ": MAX_PER needs count >= 1");
    if (k.op == Operator::kGroupBy && k.count < 0) return bad(head + ": negative count");
    if ((k.op == Operator::kLike || k.op == Operator::kUnlike) && k.value.empty()) {
      return bad(head + ": needs a regex");
    }
  }
  return Status::Ok();
}

Status ValidateRequest(const TaskRequest& r) {
  FJORD_RETURN_IF_ERROR(ValidateShape(r));
  for (const AttributeConstraint& k : r.constraints) {
    if (k.op != Operator::kLike && k.op != Operator::kUnlike) continue;
    try {
      std::regex re(k.value);
    } catch (const std::regex_error& e) {
      return base::InvalidArgument("unit `" + r.name + "`: " + std::string(OperatorName(k.op)) +
                                   " " + k.attribute + ": bad regex `" + k.value +
                                   "`: " + e.what());
    }
  }
  return Status::Ok();
}

// ---- Scale ----

Result<std::string> InstanceName(std::string_view template_name, uint32_t index) {
  size_t at = template_name.find("@.");
  if (at == std::string_view::npos || at == 0) {
    return base::InvalidArgument("`" + std::string(template_name) +
                                 "` is not a template unit (expected name@.service)");
  }
  return std::string(template_name.substr(0, at + 1)) + std::to_string(index) +
         std::string(template_name.substr(at + 1));
}

Result<ScalePlan> PlanScale(std::string_view template_name, uint32_t instances,
                            const std::vector<std::string>& existing) {
  FJORD_ASSIGN_OR_RETURN(std::string probe, InstanceName(template_name, 0));
  (void)probe;
  size_t at = template_name.find("@.");
  std::string_view prefix = template_name.substr(0, at + 1);
  std::string_view suffix = template_name.substr(at + 1);
  std::vector<uint32_t> have;
  for (const std::string& name : existing) {
    std::string_view n = name;
    if (n.size() <= prefix.size() + suffix.size() || !base::StartsWith(n, prefix) ||
        !base::EndsWith(n, suffix)) {
      continue;
    }
    int64_t idx;
    if (!ParseCount(n.substr(prefix.size(), n.size() - prefix.size() - suffix.size()), &idx)) {
      continue;
    }
    have.push_back(static_cast<uint32_t>(idx));
  }
  std::sort(have.begin(), have.end());
  ScalePlan plan;
  for (uint32_t i = 1; i <= instances; ++i) {
    if (!std::binary_search(have.begin(), have.end(), i)) {
      plan.to_add.push_back(*InstanceName(template_name, i));
    }
  }
  for (auto it = have.rbegin(); it != have.rend(); ++it) {
    if (*it > instances || *it == 0) plan.to_remove.push_back(*InstanceName(template_name, *it));
  }
  return plan;
}

// ---- ReschedulePlanner ----

ReschedulePlanner::ReschedulePlanner(RateLimit limit, int64_t now_ms)
    : limit_(limit), tokens_(0), last_ms_(now_ms) {
  // A bucket that can never hold a whole token would stall forever.
  if (!(limit_.per_second > 0)) limit_.per_second = 1;
  if (!(limit_.burst >= 1)) limit_.burst = 1;
  tokens_ = limit_.burst;
}

void ReschedulePlanner::SetLimit(RateLimit limit, int64_t now_ms) {
  Refill(now_ms);
  limit_ = limit;
  if (!(limit_.per_second > 0)) limit_.per_second = 1;
  if (!(limit_.burst >= 1)) limit_.burst = 1;
  tokens_ = std::min(tokens_, limit_.burst);
}

void ReschedulePlanner::Refill(int64_t now_ms) {
  if (now_ms <= last_ms_) return;
  tokens_ = std::min(limit_.burst,
                     tokens_ + static_cast<double>(now_ms - last_ms_) * limit_.per_second / 1000);
  last_ms_ = now_ms;
}

void ReschedulePlanner::Add(const std::vector<DisplacedTask>& tasks) {
  // A follower waits for its target when the target is queued too: in this batch, or already
  // (looked up by its priority, not by scanning the queue: a thousand lost machines add a
  // thousand batches to a queue of a hundred thousand).
  std::set<std::string> batch;
  for (const DisplacedTask& t : tasks) batch.insert(t.name);
  auto queued = [this, &batch](const std::string& name) {
    return batch.count(name) > 0 || queued_names_.count(name) > 0;
  };
  for (const DisplacedTask& t : tasks) {
    if (t.global) continue;  // global units run wherever they are eligible; never moved
    pending_.erase(t.name);
    pending_priority_[t.name] = t.priority;
    if (!t.follows.empty() && t.follows != t.name && queued(t.follows)) {
      followers_.emplace(t.follows, t.name);
    } else {
      queue_.emplace(-t.priority, t.name);
      queued_names_.insert(t.name);
    }
  }
}

std::vector<std::string> ReschedulePlanner::NextBatch(int64_t now_ms) {
  Refill(now_ms);
  std::vector<std::string> batch;
  while (!queue_.empty() && tokens_ >= 1) {
    std::string name = queue_.begin()->second;
    queue_.erase(queue_.begin());
    queued_names_.erase(name);
    tokens_ -= 1;
    auto [first, last] = followers_.equal_range(name);
    for (auto it = first; it != last; ++it) {
      queue_.emplace(INT_MIN, it->second);
      queued_names_.insert(it->second);
    }
    followers_.erase(first, last);
    batch.push_back(std::move(name));
  }
  return batch;
}

void ReschedulePlanner::MarkPending(std::string name, int priority, std::string reason) {
  // A follower that failed waits like any other task.
  pending_priority_[name] = priority;
  pending_[name] = PendingTask{name, std::move(reason)};
}

size_t ReschedulePlanner::RetryPending() {
  size_t n = pending_.size();
  for (const auto& [name, p] : pending_) {
    queue_.emplace(-pending_priority_[name], name);
    queued_names_.insert(name);
  }
  pending_.clear();
  pending_priority_.clear();
  return n;
}

int64_t ReschedulePlanner::MillisUntilNextToken(int64_t now_ms) const {
  double t = tokens_;
  if (now_ms > last_ms_) {
    t = std::min(limit_.burst,
                 t + static_cast<double>(now_ms - last_ms_) * limit_.per_second / 1000);
  }
  if (t >= 1) return 0;
  return static_cast<int64_t>(std::ceil((1 - t) * 1000 / limit_.per_second));
}

}  // namespace fjord::scheduler
