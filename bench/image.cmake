# Image import throughput: a synthetic two-layer image (many small files + one large file).
if(TARGET fjord_image_testing)
  add_executable(bench_image_import image_import_bench.cc)
  target_link_libraries(bench_image_import PRIVATE fjord_image fjord_image_testing
                        benchmark::benchmark_main)
endif()
