# bench_store: durable group-commit put throughput, 100,000-key range, memory store put rate.
add_executable(bench_store store_bench.cc)
target_link_libraries(bench_store PRIVATE fjord_store)
