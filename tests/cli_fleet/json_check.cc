// json_check: reads JSON on stdin; exit 0 when it parses and, if given, the path resolves.
// usage: json_check [PATH]   PATH like "0.name" or "length" (prints the value).
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    std::cerr << "json_check: not JSON: " << e.what() << "\n";
    return 1;
  }
  if (argc < 2) return 0;
  std::string path = argv[1];
  if (path == "length") {
    std::cout << j.size() << "\n";
    return 0;
  }
  std::stringstream ss(path);
  std::string part;
  const nlohmann::json* cur = &j;
  while (std::getline(ss, part, '.')) {
    if (cur->is_array()) {
      size_t i = std::stoul(part);
      if (i >= cur->size()) return 1;
      cur = &(*cur)[i];
    } else if (cur->is_object() && cur->contains(part)) {
      cur = &(*cur)[part];
    } else {
      std::cerr << "json_check: no " << part << " in " << cur->dump() << "\n";
      return 1;
    }
  }
  std::cout << (cur->is_string() ? cur->get<std::string>() : cur->dump()) << "\n";
  return 0;
}
