// fjord image import | ls | rm: the local image store (src/image).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "base/state_root.h"
#include "cli/commands.h"
#include "image/image_store.h"
#include "runtime/runtime.h"

namespace fjord::cli {

namespace {

struct ImageOptions {
  std::string root;  // the fjord root; images live in <root>/images
  std::string source;
  std::string name;
  bool quiet = false;
  std::string output = "table";
  std::vector<std::string> refs;
  bool force = false;
};

// Prints one error line for the verb and sets the exit code.
void Fail(std::string_view verb, const base::Status& st, int& exit_code) {
  std::cerr << "fjord image " << verb << ": " << st.message() << "\n";
  exit_code = 1;
}

std::unique_ptr<image::ImageStore> OpenStore(const ImageOptions& o, std::string_view verb,
                                             int& exit_code) {
  auto store = image::ImageStore::Open(image::ImageStoreDir(o.root));
  if (!store.ok()) {
    Fail(verb, store.status(), exit_code);
    return nullptr;
  }
  return std::move(*store);
}

// docker's units.HumanSize: decimal units, 4 significant digits.
std::string HumanSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double size = static_cast<double>(bytes);
  size_t unit = 0;
  while (size >= 1000 && unit + 1 < std::size(kUnits)) {
    size /= 1000;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g%s", size, kUnits[unit]);
  return buf;
}

std::string HumanAgo(int64_t then_unix) {
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t s = std::max<int64_t>(0, now - then_unix);
  auto plural = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s") + " ago";
  };
  if (s < 60) return s < 2 ? "Less than a second ago" : plural(s, "second");
  if (s < 3600) return s < 120 ? "About a minute ago" : plural(s / 60, "minute");
  if (s < 48 * 3600) return s < 7200 ? "About an hour ago" : plural(s / 3600, "hour");
  if (s < 14 * 86400) return plural(s / 86400, "day");
  if (s < 60 * 86400) return plural(s / (7 * 86400), "week");
  if (s < 730 * 86400) return plural(s / (30 * 86400), "month");
  return plural(s / (365 * 86400), "year");
}

std::string ShortId(const std::string& id) {
  auto colon = id.find(':');
  return id.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

std::pair<std::string, std::string> SplitName(const std::string& name) {
  auto at = name.find('@');
  std::string base = name.substr(0, at);
  auto colon = base.rfind(':');
  auto slash = base.rfind('/');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return {base, "<none>"};
  }
  return {base.substr(0, colon), base.substr(colon + 1)};
}

void PrintTable(const std::vector<image::Image>& images) {
  std::vector<std::array<std::string, 5>> rows = {
      {"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}};
  for (const auto& im : images) {
    std::vector<std::string> names = im.names;
    if (names.empty()) names.push_back("<none>:<none>");
    for (const auto& n : names) {
      auto [repo, tag] = SplitName(n);
      rows.push_back(
          {repo, tag, ShortId(im.id), HumanAgo(im.created_unix), HumanSize(im.size_bytes)});
    }
  }
  std::array<size_t, 5> width{};
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::cout << line << "\n";
  }
}

void PrintJson(const std::vector<image::Image>& images) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& im : images) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : im.layers) layers.push_back(l.string());
    out.push_back({{"id", im.id},
                   {"names", im.names},
                   {"created", im.created_unix},
                   {"size", im.size_bytes},
                   {"layers", layers},
                   {"config",
                    {{"entrypoint", im.config.entrypoint},
                     {"cmd", im.config.cmd},
                     {"env", im.config.env},
                     {"working_dir", im.config.working_dir},
                     {"user", im.config.user},
                     {"stop_signal", im.config.stop_signal}}}});
  }
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void Import(const ImageOptions& o, int& exit_code) {
  auto store = OpenStore(o, "import", exit_code);
  if (!store) return;
  std::optional<std::string> name;
  if (!o.name.empty()) name = o.name;
  auto image = store->Import(o.source, name);
  if (!image.ok()) return Fail("import", image.status(), exit_code);
  // With --name, report just that name: the image may have carried other names already.
  std::vector<std::string> shown = image->names;
  if (name) {
    std::erase_if(shown,
                  [&](const std::string& n) { return n != *name && n != *name + ":latest"; });
  }
  for (const auto& n : shown) std::cout << "Loaded image: " << n << "\n";
  if (shown.empty()) std::cout << "Loaded image ID: " << image->id << "\n";
}

void List(const ImageOptions& o, int& exit_code) {
  if (o.output != "table" && o.output != "json") {
    return Fail("ls",
                base::InvalidArgument("--output must be table or json, not `" + o.output + "`"),
                exit_code);
  }
  auto store = OpenStore(o, "ls", exit_code);
  if (!store) return;
  auto images = store->List();
  if (!images.ok()) return Fail("ls", images.status(), exit_code);
  if (o.quiet) {
    for (const auto& im : *images) std::cout << ShortId(im.id) << "\n";
  } else if (o.output == "json") {
    PrintJson(*images);
  } else {
    PrintTable(*images);
  }
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Containers of this root (running or exited, not yet removed) that run on `image`'s layers.
std::vector<std::string> ContainersUsing(const ImageOptions& o, const image::Image& image) {
  std::vector<std::string> users;
  runtime::RuntimeOptions options;
  options.root = base::StateRoot(o.root);
  auto rt = runtime::Runtime::Open(options);
  if (!rt.ok()) return users;  // no runtime state here: nothing can use the image
  auto containers = (*rt)->List();
  if (!containers.ok()) return users;
  const std::set<std::filesystem::path> layers(image.layers.begin(), image.layers.end());
  for (const auto& c : *containers) {
    for (const auto& l : c.layers) {
      if (layers.count(l)) {
        users.push_back(c.name);
        break;
      }
    }
  }
  return users;
}

void Remove(const ImageOptions& o, int& exit_code) {
  auto store = OpenStore(o, "rm", exit_code);
  if (!store) return;
  for (const auto& ref : o.refs) {
    auto before = store->Resolve(ref);
    if (!before.ok()) {
      Fail("rm", before.status(), exit_code);
      continue;
    }
    // Removing the last reference deletes the layers under the containers' overlay mounts.
    const std::string& id = before->id;  // "sha256:<hex>"; a ref may be a prefix, with or without
    const bool by_id = id.rfind(ref, 0) == 0 || id.compare(7, ref.size(), ref) == 0;
    const bool last_reference = before->names.size() <= 1 || by_id;
    if (last_reference && !o.force) {
      auto users = ContainersUsing(o, *before);
      if (!users.empty()) {
        Fail("rm",
             base::FailedPrecondition("image " + ref + " is used by container" +
                                      (users.size() > 1 ? "s " : " ") + JoinNames(users) +
                                      "; remove " + (users.size() > 1 ? "them" : "it") +
                                      " first (fjord rm) or use --force"),
             exit_code);
        continue;
      }
    }
    if (auto st = store->Remove(ref); !st.ok()) {
      Fail("rm", st, exit_code);
      continue;
    }
    auto after = store->Resolve(before->id);
    std::set<std::string> left;
    if (after.ok()) left.insert(after->names.begin(), after->names.end());
    for (const auto& n : before->names) {
      if (!left.count(n)) std::cout << "Untagged: " << n << "\n";
    }
    if (!after.ok()) std::cout << "Deleted: " << before->id << "\n";
  }
}

}  // namespace

void RegisterImageCommands(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<ImageOptions>();
  auto* image = app.add_subcommand("image", "Manage the local image store");
  image->require_subcommand(1);
  auto add_root = [opts](CLI::App* cmd) {
    cmd->add_option("--root", opts->root,
                    "fjord state directory (default $FJORD_ROOT or /var/lib/fjord); images are "
                    "kept in ROOT/images");
  };

  auto* import = image->add_subcommand(
      "import", "Import an OCI image layout (directory or tar) or a `docker save` archive");
  import->add_option("source", opts->source, "Image file or directory")->required();
  import->add_option("--name", opts->name, "Reference to give the image, e.g. busybox:latest");
  add_root(import);
  import->callback([opts, &exit_code] { Import(*opts, exit_code);
});

auto* ls = image->add_subcommand("ls", "List images");
ls->alias("list");
ls->add_flag("-q,--quiet", opts->quiet, "Only show image IDs");
ls->add_option("-o,--output", opts->output, "Output format: table or json");
add_root(ls);
ls->callback([opts, &exit_code] { List(*opts, exit_code); });

auto* rm = image->add_subcommand("rm", "Remove image references; unused layers are deleted");
rm->add_option("ref", opts->refs, "Image name[:tag], id or id prefix")->required();
rm->add_flag("-f,--force", opts->force, "Remove even when containers still use the image");
add_root(rm);
rm->callback([opts, &exit_code] { Remove(*opts, exit_code); });
}  // namespace fjord::cli

}  // namespace fjord::cli
