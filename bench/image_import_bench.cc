// Measures `ImageStore::Import` of a gzip OCI layout: layer hashing (raw and uncompressed),
// safe unpacking, syncfs and the index write. Each iteration imports into an empty store.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "image/image_store.h"
#include "image/testing.h"

namespace {

using fjord::image::ImageStore;
namespace t = fjord::image::testing;

std::vector<std::string> Layers(int small_files) {
  std::vector<t::TarEntry> base = {{.path = "usr/", .type = 'd', .mode = 0755}};
  for (int i = 0; i < small_files; ++i) {
    base.push_back(
        {.path = "usr/share/f" + std::to_string(i), .data = std::string(512, 'a' + i % 26)});
  }
  std::string big(4 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::vector<t::TarEntry> top = {{.path = "usr/share/.wh.f0"}, {.path = "big", .data = big}};
  return {t::MakeTar(base), t::MakeTar(top)};
}

void BM_ImportOciGzip(benchmark::State& state) {
  t::TempDir tmp;
  auto layers = Layers(static_cast<int>(state.range(0)));
  t::WriteOciLayout(tmp.path() / "src", layers, t::Compression::kGzip, "bench:1", "X=1");
  int n = 0;
  for (auto _ : state) {
    auto root = tmp.path() / ("store" + std::to_string(n++));
    auto store = ImageStore::Open(root);
    auto image = (*store)->Import(tmp.path() / "src", std::nullopt);
    if (!image.ok()) state.SkipWithError(std::string(image.status().message()).c_str());
    state.PauseTiming();
    std::filesystem::remove_all(root);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(layers[0].size() + layers[1].size()));
}
BENCHMARK(BM_ImportOciGzip)->Arg(100)->Arg(2000)->Unit(benchmark::kMillisecond);

}  // namespace
