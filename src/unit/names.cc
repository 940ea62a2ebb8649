// Unit names (systemd.unit(5) "Description"), systemd-escape and specifier expansion.
#include <array>
#include <string>

#include "base/strings.h"
#include "unit/unit.h"
#include "unit/unit_internal.h"

namespace fjord::unit {

namespace {

constexpr size_t kUnitNameMax = 255;

constexpr std::string_view kUnitTypes[] = {"service",   "socket", "device", "mount",
                                           "automount", "swap",   "target", "path",
                                           "timer",     "slice",  "scope"};

constexpr bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
// systemd's VALID_CHARS for unit names: alphanumerics and ":-_.\".
constexpr bool IsUnitChar(char c) {
  return IsAlnum(c) || c == ':' || c == '-' || c == '_' || c == '.' || c == '\\';
}

// Bytes allowed in the stem (the part before ".type"): IsUnitChar and '@' (the first '@'
// separates the instance; later ones are part of it). One table load per byte.
constexpr auto kStemChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = IsUnitChar(static_cast<char>(c)) || c == '@';
  return t;
}();

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Q(std::string_view s) { return base::QuoteForDisplay(s); }

}  // namespace

Result<UnitName> UnitName::Parse(std::string_view name) {
  FJORD_RETURN_IF_ERROR(CheckUnitName(name));
  UnitName u;
  u.name_ = std::string(name);
  u.dot_ = name.rfind('.');
  size_t at = name.substr(0, u.dot_).find('@');
  u.at_ = at == std::string_view::npos ? std::string::npos : at;
  return u;
}

Status CheckUnitName(std::string_view name) {
  if (name.empty()) return base::InvalidArgument("unit name is empty");
  if (name.size() > kUnitNameMax) {
    return base::InvalidArgument("unit name " + Q(name) + " is longer than 255 bytes");
  }
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) {
    return base::InvalidArgument("unit name " + Q(name) +
                                 " needs a type suffix, e.g. \"web.service\"");
  }
  std::string_view type = name.substr(dot + 1);
  bool known = false;
  for (std::string_view t : kUnitTypes) {
    if (t.size() == type.size() && t[0] == type[0] && t == type) {  // rarely calls memcmp
      known = true;
      break;
    }
  }
  if (!known) {
    return base::InvalidArgument("unit name " + Q(name) + " has unknown type " + Q(type) +
                                 "; use .service, .socket, .timer, .path, .mount, .target, ...");
  }
  std::string_view stem = name.substr(0, dot);  // not empty: dot > 0
  if (stem[0] == '@') {
    return base::InvalidArgument("unit name " + Q(name) + " has an empty name before '@'");
  }
  for (size_t i = 0; i < stem.size(); ++i) {
    if (kStemChar[static_cast<unsigned char>(stem[i])]) continue;
    return base::InvalidArgument(
        "unit name " + Q(name) + " has invalid character " + Q(stem.substr(i, 1)) +
        " at position " + std::to_string(i + 1) +
        "; systemd allows letters, digits and \":-_.\\\" (escape others with systemd-escape)");
  }
  return Status::Ok();
}

std::string_view UnitName::prefix() const {
  return std::string_view(name_).substr(0, at_ == std::string::npos ? dot_ : at_);
}
std::string_view UnitName::instance() const {
  if (at_ == std::string::npos) return {};
  return std::string_view(name_).substr(at_ + 1, dot_ - at_ - 1);
}
std::string_view UnitName::type() const { return std::string_view(name_).substr(dot_ + 1); }
std::string_view UnitName::without_type() const { return std::string_view(name_).substr(0, dot_); }
bool UnitName::is_template() const { return at_ != std::string::npos && at_ + 1 == dot_; }
bool UnitName::is_instance() const { return at_ != std::string::npos && at_ + 1 < dot_; }

Result<UnitName> UnitName::Instantiate(std::string_view instance) const {
  if (!is_template()) {
    return base::InvalidArgument("unit " + Q(name_) +
                                 " is not a template (a template looks like \"name@.service\")");
  }
  if (instance.empty()) return base::InvalidArgument("instance name is empty");
  std::string full =
      std::string(prefix()) + "@" + std::string(instance) + "." + std::string(type());
  return Parse(full);
}

UnitName UnitName::Template() const {
  if (!is_instance()) return *this;
  UnitName t = *this;
  t.name_ = std::string(prefix()) + "@." + std::string(type());
  t.dot_ = at_ + 1;
  return t;
}

std::string UnitNameEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '/') {
      out += '-';
    } else if ((IsAlnum(c) || c == ':' || c == '_' || c == '.') && !(i == 0 && c == '.')) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      unsigned char b = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

Result<std::string> UnitNameUnescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '-') {
      out += '/';
    } else if (s[i] == '\\') {
      if (i + 3 >= s.size() || s[i + 1] != 'x' || HexValue(s[i + 2]) < 0 ||
          HexValue(s[i + 3]) < 0) {
        return base::InvalidArgument("bad escape in " + Q(s) + " at position " +
                                     std::to_string(i + 1) + "; expected \\xNN");
      }
      out += static_cast<char>(HexValue(s[i + 2]) * 16 + HexValue(s[i + 3]));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Every specifier systemd knows; fjord expands the ones in ExpandSpecifiers and accepts the
// rest in files (systemd expands them on the machine).
bool IsKnownSpecifier(char c) {
  static constexpr std::string_view kKnown = "nNpPiIfjJHmbaAgGuUhsStTVvoOwWCELdlMqByYRr%";
  return kKnown.find(c) != std::string_view::npos;
}

Result<std::string> ExpandSpecifiers(std::string_view value, const SpecifierContext& ctx) {
  std::string out;
  out.reserve(value.size());
  auto need_unit = [&](char c) -> Status {
    if (ctx.unit) return Status::Ok();
    return base::InvalidArgument(std::string("specifier %") + c + " needs the unit's name");
  };
  auto need_host = [&](char c, const std::string& v, std::string_view what) -> Status {
    if (!v.empty()) return Status::Ok();
    return base::InvalidArgument(std::string("specifier %") + c + " needs the " +
                                 std::string(what) + ", which is known only on the machine");
  };
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out += value[i];
      continue;
    }
    if (i + 1 == value.size()) {
      return base::InvalidArgument("a lone '%' ends " + Q(value) + "; write %% for a percent sign");
    }
    char c = value[++i];
    switch (c) {
      case '%':
        out += '%';
        break;
      case 'n':
      case 'N':
      case 'p':
      case 'P':
      case 'i':
      case 'I':
      case 'f':
      case 'j':
      case 'J': {
        FJORD_RETURN_IF_ERROR(need_unit(c));
        const UnitName& u = *ctx.unit;
        std::string_view prefix = u.prefix();
        size_t dash = prefix.rfind('-');  // %j: the last '-' component of the prefix
        std::string_view j = dash == std::string_view::npos ? prefix : prefix.substr(dash + 1);
        if (c == 'n') out += u.str();
        if (c == 'N') out += u.without_type();
        if (c == 'p') out += prefix;
        if (c == 'i') out += u.instance();
        if (c == 'j') out += j;
        if (c == 'J' || c == 'P' || c == 'I' || c == 'f') {
          std::string_view raw = c == 'J' ? j : (c == 'P' ? prefix : u.instance());
          if (c == 'f' && raw.empty()) raw = prefix;
          FJORD_ASSIGN_OR_RETURN(std::string unescaped, UnitNameUnescape(raw));
          if (c == 'f' && (unescaped.empty() || unescaped[0] != '/')) out += '/';
          out += unescaped;
        }
        break;
      }
      case 'H':
        FJORD_RETURN_IF_ERROR(need_host(c, ctx.hostname, "host name"));
        out += ctx.hostname;
        break;
      case 'm':
        FJORD_RETURN_IF_ERROR(need_host(c, ctx.machine_id, "machine ID"));
        out += ctx.machine_id;
        break;
      case 'b':
        FJORD_RETURN_IF_ERROR(need_host(c, ctx.boot_id, "boot ID"));
        out += ctx.boot_id;
        break;
      default:
        if (IsKnownSpecifier(c)) {
          return base::InvalidArgument(std::string("specifier %") + c +
                                       " is systemd's but fjord cannot expand it");
        }
        return base::InvalidArgument(std::string("unknown specifier %") + c +
                                     "; write %% for a literal percent sign");
    }
  }
  return out;
}

}  // namespace fjord::unit
