add_executable(bench_unit_parse ${CMAKE_CURRENT_SOURCE_DIR}/unit_parse_bench.cc)
target_link_libraries(bench_unit_parse PRIVATE fjord_unit benchmark::benchmark)
