// JSON helpers shared by types.cc and protocol.cc (private to src/api).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "base/status.h"

namespace fjord::api::internal {

using json = nlohmann::json;

// Invalid UTF-8 is replaced rather than thrown on: output must never fail.
inline std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

inline std::string TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

// Reads and type-checks the fields of one JSON object; `path` names it for errors ("" at the
// top, "options[2]." inside).
class Reader {
 public:
  Reader(const json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  std::string Field(std::string_view key) const { return path_ + std::string(key); }
  base::Status Error(std::string_view key, std::string_view why) const {
    return base::InvalidArgument("field `" + Field(key) + "`: " + std::string(why));
  }

  // Absent and null are both "not given", as in fleet's Go decoding.
  const json* Get(std::string_view key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  base::Status String(std::string_view key, std::string& out, bool required = false) const {
    const json* v = Get(key);
    if (v == nullptr) return required ? Error(key, "required") : base::Status::Ok();
    if (!v->is_string()) return Error(key, "must be a string, got " + TypeName(*v));
    out = v->get<std::string>();
    if (required && out.empty()) return Error(key, "must not be empty");
    return base::Status::Ok();
  }

  base::Status State(std::string_view key, std::optional<UnitStateName>& out) const {
    std::string text;
    FJORD_RETURN_IF_ERROR(String(key, text));
    if (text.empty()) return base::Status::Ok();  // fleet treats "" as not given
    auto s = ParseUnitStateName(text);
    if (!s.ok()) return Error(key, s.status().message());
    out = *s;
    return base::Status::Ok();
  }

  base::Status Int(std::string_view key, int64_t& out) const {
    const json* v = Get(key);
    if (v == nullptr) return base::Status::Ok();
    if (!v->is_number_integer()) return Error(key, "must be an integer, got " + TypeName(*v));
    out = v->get<int64_t>();
    return base::Status::Ok();
  }

  base::Status Bool(std::string_view key, bool& out) const {
    const json* v = Get(key);
    if (v == nullptr) return base::Status::Ok();
    if (!v->is_boolean()) return Error(key, "must be a boolean, got " + TypeName(*v));
    out = v->get<bool>();
    return base::Status::Ok();
  }

  base::Status Object(std::string_view key, const json*& out) const {
    out = Get(key);
    if (out != nullptr && !out->is_object()) {
      return Error(key, "must be an object, got " + TypeName(*out));
    }
    return base::Status::Ok();
  }

  base::Status StringList(std::string_view key, std::vector<std::string>& out) const {
    const json* v = nullptr;
    FJORD_RETURN_IF_ERROR(Array(key, v));
    if (v == nullptr) return base::Status::Ok();
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        return Error(std::string(key) + "[" + std::to_string(i) + "]",
                     "must be a string, got " + TypeName((*v)[i]));
      }
      out.push_back((*v)[i].get<std::string>());
    }
    return base::Status::Ok();
  }

  base::Status Array(std::string_view key, const json*& out) const {
    out = Get(key);
    if (out != nullptr && !out->is_array()) {
      return Error(key, "must be an array, got " + TypeName(*out));
    }
    return base::Status::Ok();
  }

 private:
  const json& obj_;
  std::string path_;
};

inline base::Result<json> ParseObject(std::string_view text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error, or out_of_range for a number too large for a double. Drop nlohmann's
    // "[json.exception.parse_error.101] " prefix; keep the position.
    std::string what = e.what();
    if (size_t p = what.find("] "); p != std::string::npos) what.erase(0, p + 2);
    return base::InvalidArgument("body is not valid JSON: " + what);
  }
  if (!j.is_object()) {
    return base::InvalidArgument("body must be a JSON object, got " + TypeName(j));
  }
  return j;
}

inline void PutIf(json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}

// Appends JSON text directly, for large lists where building nlohmann's DOM first costs more
// than the output itself. Strings are escaped like nlohmann's dump; invalid UTF-8 becomes
// U+FFFD (as with error_handler_t::replace), so the output is always valid JSON.
class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Key(std::string_view key) {
    Separate();
    Quoted(key);
    out_->push_back(':');
    first_ = true;  // the value follows without a comma
  }
  void String(std::string_view v) {
    Separate();
    Quoted(v);
  }
  void Int(int64_t v) {
    Separate();
    out_->append(std::to_string(v));
  }
  void Bool(bool v) {
    Separate();
    out_->append(v ? "true" : "false");
  }
  // Fields omitted when empty or zero, as the DOM encoders do.
  void StringField(std::string_view key, std::string_view v) {
    if (v.empty()) return;
    Key(key);
    String(v);
  }
  void IntField(std::string_view key, int64_t v) {
    if (v == 0) return;
    Key(key);
    Int(v);
  }

 private:
  void Separate() {
    if (!first_) out_->push_back(',');
    first_ = false;
  }
  void Open(char c) {
    Separate();
    out_->push_back(c);
    first_ = true;
  }
  void Close(char c) {
    out_->push_back(c);
    first_ = false;
  }
  void Quoted(std::string_view s);  // json_util.cc

  std::string* out_;
  bool first_ = true;
};

// Shapes shared by fleet's and fjord's types (defined in types.cc).
json OptionJson(const UnitOption& o);
json UnitStateJson(const UnitState& s);
// Decodes an "options" array at `r`'s `key` (absent: empty).
base::Status DecodeOptions(const Reader& r, std::string_view key, std::vector<UnitOption>& out);
base::Result<UnitState> DecodeUnitState(const json& j, const std::string& path);
// Decodes an object of string values ("metadata").
base::Status DecodeStringMap(const Reader& r, std::string_view key,
                             std::map<std::string, std::string>& out);

// Decodes {"<list_key>":[...],"nextPageToken":"..."} with `decode` for each element.
template <typename T, typename Decode>
base::Status DecodeList(const json& j, std::string_view list_key, Decode decode,
                        std::vector<T>& out, std::string& token) {
  Reader r(j, "");
  FJORD_RETURN_IF_ERROR(r.String("nextPageToken", token));
  const json* items = nullptr;
  FJORD_RETURN_IF_ERROR(r.Array(list_key, items));
  if (items == nullptr) return base::Status::Ok();
  for (size_t i = 0; i < items->size(); ++i) {
    std::string where = std::string(list_key) + "[" + std::to_string(i) + "]";
    const json& item = (*items)[i];
    if (!item.is_object()) {
      return base::InvalidArgument("field `" + where + "`: must be an object, got " +
                                   TypeName(item));
    }
    FJORD_ASSIGN_OR_RETURN(T v, decode(item, where + "."));
    out.push_back(std::move(v));
  }
  return base::Status::Ok();
}

template <typename T, typename Decode>
base::Result<T> DecodeTop(std::string_view text, Decode decode) {
  FJORD_ASSIGN_OR_RETURN(json j, ParseObject(text));
  return decode(j, "");
}

}  // namespace fjord::api::internal
