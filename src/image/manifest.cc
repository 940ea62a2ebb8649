#include "image/manifest.h"

#include <nlohmann/json.hpp>

#include "image/digest.h"

namespace fjord::image {

namespace {

using nlohmann::json;

// Field access that reports "<file>: field `<path>` ..." instead of throwing.
class Doc {
 public:
  explicit Doc(std::string_view file) : file_(file) {}

  base::Status Error(std::string_view field, std::string_view what) const {
    return base::InvalidArgument(file_ + ": field `" + std::string(field) + "` " +
                                 std::string(what));
  }

  base::Result<json> Parse(std::string_view text) const {
    try {
      return json::parse(text);
    } catch (const json::exception& e) {
      return base::InvalidArgument(file_ + ": not valid JSON: " + e.what());
    }
  }

  // Optional string: absent or null yields "".
  base::Result<std::string> String(const json& obj, const char* key, std::string_view path) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::string();
    if (!it->is_string()) return Error(path, "must be a string");
    return it->get<std::string>();
  }

  base::Result<std::vector<std::string>> Strings(const json& obj, const char* key,
                                                 std::string_view path) const {
    std::vector<std::string> out;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return out;
    if (!it->is_array()) return Error(path, "must be an array of strings");
    for (const auto& v : *it) {
      if (!v.is_string()) return Error(path, "must be an array of strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  }

  base::Result<const json*> Object(const json& obj, const char* key, std::string_view path,
                                   bool required) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) return Error(path, "is missing");
      return static_cast<const json*>(nullptr);
    }
    if (!it->is_object()) return Error(path, "must be an object");
    return &*it;
  }

  base::Result<const json*> Array(const json& obj, const char* key, std::string_view path) const {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_array()) return Error(path, "must be an array");
    return &*it;
  }

  base::Result<Descriptor> ParseDescriptor(const json& j, const std::string& path) const {
    if (!j.is_object()) return Error(path, "must be an object");
    Descriptor d;
    FJORD_ASSIGN_OR_RETURN(d.media_type, String(j, "mediaType", path + ".mediaType"));
    FJORD_ASSIGN_OR_RETURN(d.digest, String(j, "digest", path + ".digest"));
    FJORD_RETURN_IF_ERROR(ValidateDigest(d.digest, file_ + ": field `" + path + ".digest`"));
    auto size = j.find("size");
    if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
      return Error(path + ".size", "must be a non-negative integer");
    }
    d.size = size->get<int64_t>();
    FJORD_ASSIGN_OR_RETURN(const json* ann, Object(j, "annotations", path + ".annotations", false));
    if (ann != nullptr) {
      for (const auto& [k, v] : ann->items()) {
        if (!v.is_string()) return Error(path + ".annotations." + k, "must be a string");
        d.annotations[k] = v.get<std::string>();
      }
    }
    FJORD_ASSIGN_OR_RETURN(const json* platform, Object(j, "platform", path + ".platform", false));
    if (platform != nullptr) {
      FJORD_ASSIGN_OR_RETURN(d.os, String(*platform, "os", path + ".platform.os"));
      FJORD_ASSIGN_OR_RETURN(d.architecture,
                             String(*platform, "architecture", path + ".platform.architecture"));
    }
    return d;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

base::Result<std::vector<Descriptor>> ParseIndexImpl(const Doc& doc, const json& j) {
  if (!j.is_object()) return doc.Error("(top level)", "must be an object");
  FJORD_ASSIGN_OR_RETURN(const json* manifests, doc.Array(j, "manifests", "manifests"));
  std::vector<Descriptor> out;
  for (size_t i = 0; i < manifests->size(); ++i) {
    FJORD_ASSIGN_OR_RETURN(
        Descriptor d, doc.ParseDescriptor((*manifests)[i], "manifests[" + std::to_string(i) + "]"));
    out.push_back(std::move(d));
  }
  return out;
}

base::Result<OciManifest> ParseManifestImpl(const Doc& doc, const json& j) {
  if (!j.is_object()) return doc.Error("(top level)", "must be an object");
  OciManifest m;
  FJORD_ASSIGN_OR_RETURN(const json* config, doc.Object(j, "config", "config", true));
  FJORD_ASSIGN_OR_RETURN(m.config, doc.ParseDescriptor(*config, "config"));
  FJORD_ASSIGN_OR_RETURN(const json* layers, doc.Array(j, "layers", "layers"));
  for (size_t i = 0; i < layers->size(); ++i) {
    FJORD_ASSIGN_OR_RETURN(Descriptor d,
                           doc.ParseDescriptor((*layers)[i], "layers[" + std::to_string(i) + "]"));
    m.layers.push_back(std::move(d));
  }
  return m;
}

base::Result<ParsedConfig> ParseConfigImpl(const Doc& doc, const json& j) {
  if (!j.is_object()) return doc.Error("(top level)", "must be an object");
  ParsedConfig out;
  FJORD_ASSIGN_OR_RETURN(out.os, doc.String(j, "os", "os"));
  FJORD_ASSIGN_OR_RETURN(out.architecture, doc.String(j, "architecture", "architecture"));
  FJORD_ASSIGN_OR_RETURN(const json* c, doc.Object(j, "config", "config", false));
  if (c != nullptr) {
    ImageConfig& ic = out.config;
    FJORD_ASSIGN_OR_RETURN(ic.entrypoint, doc.Strings(*c, "Entrypoint", "config.Entrypoint"));
    FJORD_ASSIGN_OR_RETURN(ic.cmd, doc.Strings(*c, "Cmd", "config.Cmd"));
    FJORD_ASSIGN_OR_RETURN(ic.env, doc.Strings(*c, "Env", "config.Env"));
    FJORD_ASSIGN_OR_RETURN(ic.working_dir, doc.String(*c, "WorkingDir", "config.WorkingDir"));
    FJORD_ASSIGN_OR_RETURN(ic.user, doc.String(*c, "User", "config.User"));
    FJORD_ASSIGN_OR_RETURN(ic.stop_signal, doc.String(*c, "StopSignal", "config.StopSignal"));
    for (size_t i = 0; i < ic.env.size(); ++i) {
      if (ic.env[i].find('=') == std::string::npos) {
        return doc.Error("config.Env[" + std::to_string(i) + "]", "must be KEY=VALUE");
      }
    }
  }
  FJORD_ASSIGN_OR_RETURN(const json* rootfs, doc.Object(j, "rootfs", "rootfs", true));
  FJORD_ASSIGN_OR_RETURN(std::string type, doc.String(*rootfs, "type", "rootfs.type"));
  if (type != "layers") return doc.Error("rootfs.type", "must be \"layers\"");
  FJORD_ASSIGN_OR_RETURN(out.diff_ids, doc.Strings(*rootfs, "diff_ids", "rootfs.diff_ids"));
  for (size_t i = 0; i < out.diff_ids.size(); ++i) {
    FJORD_RETURN_IF_ERROR(ValidateDigest(
        out.diff_ids[i], doc.file() + ": field `rootfs.diff_ids[" + std::to_string(i) + "]`"));
  }
  return out;
}

base::Result<std::vector<DockerManifestEntry>> ParseDockerImpl(const Doc& doc, const json& j) {
  if (!j.is_array()) return doc.Error("(top level)", "must be an array of images");
  std::vector<DockerManifestEntry> out;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string p = "[" + std::to_string(i) + "]";
    if (!j[i].is_object()) return doc.Error(p, "must be an object");
    DockerManifestEntry e;
    FJORD_ASSIGN_OR_RETURN(e.config, doc.String(j[i], "Config", p + ".Config"));
    if (e.config.empty()) return doc.Error(p + ".Config", "is missing");
    FJORD_ASSIGN_OR_RETURN(e.repo_tags, doc.Strings(j[i], "RepoTags", p + ".RepoTags"));
    FJORD_ASSIGN_OR_RETURN(e.layers, doc.Strings(j[i], "Layers", p + ".Layers"));
    out.push_back(std::move(e));
  }
  return out;
}

base::Result<std::vector<IndexEntry>> ParseStoreIndexImpl(const Doc& doc, const json& j) {
  if (!j.is_object()) return doc.Error("(top level)", "must be an object");
  FJORD_ASSIGN_OR_RETURN(const json* images, doc.Array(j, "images", "images"));
  std::vector<IndexEntry> out;
  for (size_t i = 0; i < images->size(); ++i) {
    const json& im = (*images)[i];
    std::string p = "images[" + std::to_string(i) + "]";
    if (!im.is_object()) return doc.Error(p, "must be an object");
    IndexEntry e;
    FJORD_ASSIGN_OR_RETURN(e.id, doc.String(im, "id", p + ".id"));
    FJORD_RETURN_IF_ERROR(ValidateDigest(e.id, doc.file() + ": field `" + p + ".id`"));
    FJORD_ASSIGN_OR_RETURN(e.names, doc.Strings(im, "names", p + ".names"));
    FJORD_ASSIGN_OR_RETURN(e.layers, doc.Strings(im, "layers", p + ".layers"));
    for (const auto& l : e.layers) {
      FJORD_RETURN_IF_ERROR(ValidateDigest(l, doc.file() + ": field `" + p + ".layers`"));
    }
    auto size = im.find("size");
    auto created = im.find("created");
    if (size == im.end() || !size->is_number_unsigned()) {
      return doc.Error(p + ".size", "must be a non-negative integer");
    }
    if (created == im.end() || !created->is_number_integer()) {
      return doc.Error(p + ".created", "must be an integer");
    }
    e.size_bytes = size->get<uint64_t>();
    e.created_unix = created->get<int64_t>();
    out.push_back(std::move(e));
  }
  return out;
}

// The one place nlohmann exceptions are caught: anything a check above missed still becomes
// a Status naming the file.
template <typename T, typename F>
base::Result<T> Guarded(std::string_view text, std::string_view file, F parse) {
  Doc doc(file);
  try {
    FJORD_ASSIGN_OR_RETURN(json j, doc.Parse(text));
    return parse(doc, j);
  } catch (const std::exception& e) {
    return base::InvalidArgument(std::string(file) + ": " + e.what());
  }
}

}  // namespace

base::Result<std::vector<Descriptor>> ParseOciIndex(std::string_view text, std::string_view file) {
  return Guarded<std::vector<Descriptor>>(text, file, ParseIndexImpl);
}

base::Result<OciManifest> ParseOciManifest(std::string_view text, std::string_view file) {
  return Guarded<OciManifest>(text, file, ParseManifestImpl);
}

base::Result<ParsedConfig> ParseImageConfig(std::string_view text, std::string_view file) {
  return Guarded<ParsedConfig>(text, file, ParseConfigImpl);
}

base::Result<std::vector<DockerManifestEntry>> ParseDockerManifest(std::string_view text,
                                                                   std::string_view file) {
  return Guarded<std::vector<DockerManifestEntry>>(text, file, ParseDockerImpl);
}

base::Result<std::vector<IndexEntry>> ParseStoreIndex(std::string_view text,
                                                      std::string_view file) {
  return Guarded<std::vector<IndexEntry>>(text, file, ParseStoreIndexImpl);
}

std::string SerializeStoreIndex(const std::vector<IndexEntry>& entries) {
  json images = json::array();
  for (const auto& e : entries) {
    images.push_back({{"id", e.id},
                      {"names", e.names},
                      {"layers", e.layers},
                      {"size", e.size_bytes},
                      {"created", e.created_unix}});
  }
  json doc = {{"version", 1}, {"images", images}};
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace fjord::image
