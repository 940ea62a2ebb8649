// Whole-unit rules: what a service needs, fleet's [X-Fleet] combinations (as fleet's
// api.ValidateOptions), fjord's [X-Fjord] and [Container].
#include <algorithm>
#include <regex>
#include <unordered_map>

#include "base/strings.h"
#include "unit/unit_internal.h"

namespace fjord::unit {

namespace {

std::string Q(std::string_view s) { return base::QuoteForDisplay(s); }

// fleet names a deprecated key by its new one; the keys.cc tables already warned.
std::string_view FleetCanonical(std::string_view key) {
  if (key == "X-ConditionMachineID" || key == "X-ConditionMachineBootID") return "MachineID";
  if (key == "X-ConditionMachineOf") return "MachineOf";
  if (key == "X-ConditionMachineMetadata") return "MachineMetadata";
  if (key == "X-Conflicts") return "Conflicts";
  return key;
}

// Words of a value with unit-name specifiers expanded (fleet expands %n %N %p %i), as views:
// into the value for plain words (no copies), into *storage for unquoted or expanded ones.
// Reports and returns false on failure; syntax errors were already reported by CheckOption.
// The context fleet expands [X-Fleet] specifiers in: only the unit's name. Built only for
// values that have a '%' (most have none).
SpecifierContext FleetContext(const UnitName& name) {
  SpecifierContext ctx;
  ctx.unit = name;
  return ctx;
}

bool FleetWords(const ParsedOption& o, const UnitName& name, DiagSink& sink,
                std::vector<std::string>* storage, std::vector<std::string_view>* out) {
  if (!ContainsAny(o.value, "\"'\\%")) {  // plain words: no quoting, nothing to expand
    ForEachPlainWord(o.value, [&](std::string_view w) {
      out->push_back(w);
      return true;
    });
    return true;
  }
  auto words = SplitWords(o.value);
  if (!words.ok()) return false;
  const SpecifierContext ctx = FleetContext(name);
  for (std::string& w : *words) {
    if (w.find('%') == std::string::npos) continue;
    auto expanded = ExpandSpecifiers(w, ctx);
    if (!expanded.ok()) {
      sink.Error(o, true,
                 "in " + std::string(o.name) + "=: " + std::string(expanded.status().message()));
      return false;
    }
    w = std::move(*expanded);
  }
  // Views are taken only once storage no longer changes.
  *storage = std::move(*words);
  for (const std::string& w : *storage) out->push_back(w);
  return true;
}

struct FleetLines {  // the line of the first use of each key, for placing combination errors
  const ParsedOption* global = nullptr;
  const ParsedOption* machine_id = nullptr;
  const ParsedOption* machine_of = nullptr;
  const ParsedOption* conflicts = nullptr;
  const ParsedOption* replaces = nullptr;
};

void CheckFleet(const std::vector<ParsedOption>& opts, const UnitName& name, DiagSink& sink,
                FleetRequirements* f) {
  FleetLines at;
  std::unordered_map<std::string, size_t> meta_index;  // key -> position in f->metadata
  std::vector<std::string_view> words;                 // reused for each option
  std::vector<std::string> storage;                    // words that are not views into the value
  for (const ParsedOption& o : opts) {
    if (o.kind != SectionKind::kXFleet) continue;
    std::string_view key = FleetCanonical(o.name);
    words.clear();
    if (key == "Global") {
      at.global = &o;
      auto b = ParseBool(o.value);
      if (!b.ok()) {
        sink.Error(o, true, "invalid Global=: " + std::string(b.status().message()));
      } else if (*b && o.value != "true") {
        sink.Warn(o, true,
                  "fleet treats only the exact word \"true\" as true, so Global=" +
                      std::string(o.value) + " is not global under fleet; write Global=true");
      }
      f->global = o.value == "true";
      if (!f->global) at.global = nullptr;
    } else if (key == "MachineID") {
      at.machine_id = &o;
      auto id = ExpandSpecifiers(o.value, FleetContext(name));
      if (!id.ok()) {
        sink.Error(o, true, "in MachineID=: " + std::string(id.status().message()));
      } else {
        f->machine_id = *id;
      }
      if (f->machine_id.empty()) at.machine_id = nullptr;
    } else if (key == "MachineOf") {
      if (!FleetWords(o, name, sink, &storage, &words)) continue;
      for (std::string_view w : words) {
        if (Status st = CheckUnitName(w); !st.ok()) {
          sink.Error(o, true, "MachineOf=: " + std::string(st.message()));
          continue;
        }
        f->machine_of.emplace_back(w);
        at.machine_of = at.machine_of ? at.machine_of : &o;
      }
    } else if (key == "MachineMetadata") {
      if (!FleetWords(o, name, sink, &storage, &words)) continue;
      for (std::string_view w : words) {
        size_t eq = w.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == w.size()) {
          sink.Error(o, true,
                     "MachineMetadata= value " + Q(w) +
                         " is not key=value; write e.g. MachineMetadata=region=us-east");
          continue;
        }
        std::string_view k = w.substr(0, eq), v = w.substr(eq + 1);
        // A few keys: a linear scan; many (hostile input): a hash index built on demand.
        size_t pos = std::string::npos;
        if (f->metadata.size() <= 16) {
          for (size_t i = 0; i < f->metadata.size(); ++i) {
            if (f->metadata[i].key == k) pos = i;
          }
        } else {
          if (meta_index.empty()) {
            for (size_t i = 0; i < f->metadata.size(); ++i)
              meta_index.emplace(f->metadata[i].key, i);
          }
          if (auto it = meta_index.find(std::string(k)); it != meta_index.end()) pos = it->second;
        }
        if (pos == std::string::npos) {
          pos = f->metadata.size();
          if (f->metadata.capacity() == 0) f->metadata.reserve(4);  // skips regrowth moves
          f->metadata.push_back({std::string(k), {}});
          if (!meta_index.empty()) meta_index.emplace(std::string(k), pos);
        }
        auto& values = f->metadata[pos].values;
        // Duplicates are dropped; the scan is bounded so a hostile line stays cheap.
        if (values.size() > 64 || std::find(values.begin(), values.end(), v) == values.end()) {
          if (values.capacity() == 0) values.reserve(4);
          values.emplace_back(v);
        }
      }
    } else if (key == "Conflicts" || key == "Replaces") {
      if (!FleetWords(o, name, sink, &storage, &words)) continue;
      auto& list = key == "Conflicts" ? f->conflicts : f->replaces;
      auto& first = key == "Conflicts" ? at.conflicts : at.replaces;
      for (std::string_view w : words) list.emplace_back(w);
      if (!list.empty() && !first) first = &o;
    }
  }
  // fleet's api.ValidateOptions, in its order; reported at the later of the two lines.
  struct Rule {
    const ParsedOption* a;
    const ParsedOption* b;
    std::string_view an, bn;
  };
  const Rule rules[] = {
      {at.machine_id, at.machine_of, "MachineID", "MachineOf"},
      {at.machine_id, at.conflicts, "MachineID", "Conflicts"},
      {at.machine_id, at.global, "MachineID", "Global"},
      {at.machine_id, at.replaces, "MachineID", "Replaces"},
      {at.global, at.machine_of, "Global", "MachineOf"},
      {at.global, at.replaces, "Global", "Replaces"},
      {at.conflicts, at.replaces, "Conflicts", "Replaces"},
  };
  for (const Rule& r : rules) {
    if (r.a == nullptr || r.b == nullptr) continue;
    const ParsedOption* later = r.a->line > r.b->line ? r.a : r.b;
    sink.Error(*later, false,
               std::string(r.an) + "= cannot be used with " + std::string(r.bn) +
                   "= in [X-Fleet] (fleet refuses this combination); remove one of them");
  }
  // Each pair costs a glob match; a hostile unit with thousands of each is checked in part.
  size_t budget = 100000;
  for (const std::string& peer : f->machine_of) {
    for (const auto* list : {&f->conflicts, &f->replaces}) {
      for (const std::string& glob : *list) {
        if (budget == 0) break;
        --budget;
        if (GlobMatch(glob, peer)) {
          sink.Error(*at.machine_of, true,
                     "unresolvable requirements: MachineOf=" + peer + " matches " +
                         (list == &f->conflicts ? "Conflicts=" : "Replaces=") + glob);
        }
      }
    }
  }
}

Status ParsePorts(std::string_view word, PortRange* out) {
  std::string_view w = word;
  if (size_t slash = w.find('/'); slash != std::string_view::npos) {
    out->protocol = std::string(w.substr(slash + 1));
    if (out->protocol != "tcp" && out->protocol != "udp") {
      return base::InvalidArgument("port " + Q(word) + " has protocol " + Q(out->protocol) +
                                   "; use tcp or udp");
    }
    w = w.substr(0, slash);
  }
  auto num = [&](std::string_view d, uint16_t* v) {
    if (d.empty() || d.size() > 5 || d.find_first_not_of("0123456789") != std::string_view::npos)
      return false;
    int n = std::stoi(std::string(d));
    if (n < 1 || n > 65535) return false;
    *v = static_cast<uint16_t>(n);
    return true;
  };
  size_t dash = w.find('-');
  bool ok = dash == std::string_view::npos
                ? num(w, &out->first) && (out->last = out->first, true)
                : num(w.substr(0, dash), &out->first) && num(w.substr(dash + 1), &out->last) &&
                      out->first <= out->last;
  if (!ok) {
    return base::InvalidArgument("port " + Q(word) +
                                 " is not a port or range in 1-65535; write e.g. 80, 8000-8010 or "
                                 "53/udp");
  }
  return Status::Ok();
}

Result<Constraint> ParseConstraint(std::string_view value) {
  FJORD_ASSIGN_OR_RETURN(auto w, SplitWords(value));
  static constexpr std::pair<std::string_view, Constraint::Op> kOps[] = {
      {"UNIQUE", Constraint::Op::kUnique},
      {"CLUSTER", Constraint::Op::kCluster},
      {"GROUP_BY", Constraint::Op::kGroupBy},
      {"LIKE", Constraint::Op::kLike},
      {"UNLIKE", Constraint::Op::kUnlike},
      {"MAX_PER", Constraint::Op::kMaxPer},
      {"IS", Constraint::Op::kIs}};
  if (w.size() < 2 || w.size() > 3) {
    return base::InvalidArgument(
        "a constraint is \"field OPERATOR [value]\", e.g. "
        "\"rack GROUP_BY\" or \"zone LIKE eu-.*\"");
  }
  Constraint c;
  c.field = w[0];
  bool found = false;
  for (const auto& [name, op] : kOps) {
    if (w[1] == name) {
      c.op = op;
      found = true;
    }
  }
  if (!found) {
    return base::InvalidArgument("unknown constraint operator " + Q(w[1]) +
                                 "; use UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER or IS");
  }
  if (w.size() == 3) c.value = w[2];
  bool needs_value = c.op == Constraint::Op::kLike || c.op == Constraint::Op::kUnlike ||
                     c.op == Constraint::Op::kMaxPer || c.op == Constraint::Op::kIs;
  if (needs_value && c.value.empty()) {
    return base::InvalidArgument("operator " + w[1] + " needs a value, e.g. \"" + c.field + " " +
                                 w[1] + " ...\"");
  }
  if (c.op == Constraint::Op::kUnique && !c.value.empty()) {
    return base::InvalidArgument("operator UNIQUE takes no value");
  }
  bool numeric = c.op == Constraint::Op::kMaxPer || c.op == Constraint::Op::kGroupBy;
  if (numeric && !c.value.empty() &&
      (c.value.size() > 6 || c.value.find_first_not_of("0123456789") != std::string::npos ||
       c.value == "0")) {
    return base::InvalidArgument("operator " + w[1] + " takes a positive number, not " +
                                 Q(c.value));
  }
  if (c.op == Constraint::Op::kLike || c.op == Constraint::Op::kUnlike) {
    if (c.value.size() > 256) return base::InvalidArgument("regular expression is over 256 bytes");
    try {
      std::regex re(c.value, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return base::InvalidArgument("regular expression " + Q(c.value) + " is invalid: " + e.what());
    }
  }
  return c;
}

void CheckFjord(const std::vector<ParsedOption>& opts, DiagSink& sink, FjordRequirements* f) {
  for (const ParsedOption& o : opts) {
    if (o.kind != SectionKind::kXFjord || o.value.empty()) continue;
    const std::string_view k = o.name;
    const std::string v(o.value);
    if (k == "Disk") {
      if (auto b = ParseBytes(v); b.ok()) f->disk_bytes = *b;
    } else if (k == "Instances") {
      if (v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(v) < 1 || std::stoi(v) > 10000) {
        sink.Error(o, true, "Instances= must be a whole number from 1 to 10000, not " + Q(v));
      } else {
        f->instances = static_cast<uint32_t>(std::stoi(v));
      }
    } else if (k == "Ports") {
      auto words = SplitWords(v);
      if (!words.ok()) continue;
      for (const std::string& w : *words) {
        PortRange p;
        if (Status st = ParsePorts(w, &p); !st.ok()) {
          sink.Error(o, true, "invalid Ports=: " + std::string(st.message()));
        } else {
          f->ports.push_back(p);
        }
      }
    } else if (k == "Constraint") {
      auto c = ParseConstraint(v);
      if (!c.ok()) {
        sink.Error(o, true, "invalid Constraint=: " + std::string(c.status().message()));
      } else {
        f->constraints.push_back(std::move(*c));
      }
    } else if (k == "Strategy") {
      f->strategy = v == "binpack" ? FjordRequirements::Strategy::kBinpack
                                   : FjordRequirements::Strategy::kSpread;
    } else if (k == "Affinity" || k == "AntiAffinity") {
      auto words = SplitWords(v);
      if (!words.ok()) continue;
      auto& list = k == "Affinity" ? f->affinity : f->anti_affinity;
      list.insert(list.end(), words->begin(), words->end());
    }
  }
}

void CheckService(const std::vector<ParsedOption>& opts, DiagSink& sink, int* exec_start_count) {
  std::string_view type = "simple";
  std::vector<const ParsedOption*> starts;
  bool has_stop = false, has_success_action = false;
  for (const ParsedOption& o : opts) {
    if (o.kind == SectionKind::kService) {
      if (o.name == "Type" && !o.value.empty()) type = o.value;
      if (o.name == "ExecStart") {
        if (o.value.empty()) {
          starts.clear();
        } else {
          starts.push_back(&o);
        }
      }
      if (o.name == "ExecStop" && !o.value.empty()) has_stop = true;
    }
    if (o.kind == SectionKind::kUnit && o.name == "SuccessAction") has_success_action = true;
  }
  size_t commands = 0;
  for (const ParsedOption* o : starts) {
    // Only a lone ';' word separates commands; most lines have none.
    if (o->value.find(';') == std::string::npos) {
      ++commands;
    } else {
      auto cmds = ParseExecLine(o->value);
      commands += cmds.ok() ? cmds->size() : 1;
    }
    if (type != "oneshot" && commands > 1) {
      sink.Error(*o, false,
                 "more than one ExecStart= command is allowed only with Type=oneshot (this "
                 "service is Type=" +
                     std::string(type) + "); use ExecStartPre= or ExecStartPost=");
      break;
    }
  }
  *exec_start_count = static_cast<int>(starts.size());
  if (starts.empty() && !has_stop && !has_success_action) {
    sink.Add(Severity::kError, 0, 0, "Service", "ExecStart",
             "service has no ExecStart= (nor ExecStop= or SuccessAction=), so systemd refuses to "
             "start it; add ExecStart=/path/to/program or a [Container] section with Image=");
  }
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view name) {
  // Iterative matcher with one backtrack point for '*': linear-ish, never exponential.
  size_t p = 0, n = 0, star_p = std::string_view::npos, star_n = 0;
  auto match_class = [&](size_t& pi, char c) -> int {  // 1 match, 0 no match, -1 bad pattern
    size_t i = pi + 1;
    bool negate = i < pattern.size() && pattern[i] == '^';
    if (negate) ++i;
    bool matched = false, first = true;
    while (i < pattern.size() && (pattern[i] != ']' || first)) {
      first = false;
      char lo = pattern[i];
      if (lo == '\\' && i + 1 < pattern.size()) lo = pattern[++i];
      char hi = lo;
      if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
        hi = pattern[i + 2];
        if (hi == '\\' && i + 3 < pattern.size()) hi = pattern[++i + 2];
        i += 2;
      }
      if (lo <= c && c <= hi) matched = true;
      ++i;
    }
    if (i >= pattern.size()) return -1;
    pi = i + 1;
    return matched != negate ? 1 : 0;
  };
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_n = n;
      continue;
    }
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '?') {
        ++p;
        ++n;
        continue;
      }
      if (pc == '[') {
        size_t pi = p;
        int r = match_class(pi, name[n]);
        if (r < 0) return false;
        if (r == 1) {
          p = pi;
          ++n;
          continue;
        }
      } else {
        if (pc == '\\' && p + 1 < pattern.size()) pc = pattern[++p];
        if (pc == name[n]) {
          ++p;
          ++n;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    n = ++star_n;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

void CheckUnit(const std::vector<ParsedOption>& opts, const UnitName& name, DiagSink& sink,
               FleetRequirements* fleet, FjordRequirements* fjord) {
  CheckFleet(opts, name, sink, fleet);
  CheckFjord(opts, sink, fjord);
  bool container = false, has_image = false;
  for (const ParsedOption& o : opts) {
    if (o.kind != SectionKind::kContainer) continue;
    container = true;
    if (o.name == "Image") has_image = !o.value.empty();
  }
  if (container && !has_image) {
    sink.Add(
        Severity::kError, 0, 0, "Container", "Image",
        "[Container] has no Image=; name the image to run, e.g. Image=docker.io/library/nginx");
  }
  if (name.type() == "service" && !container) {
    int starts = 0;
    CheckService(opts, sink, &starts);
  }
}

}  // namespace fjord::unit
