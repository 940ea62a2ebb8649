# bench_http: requests/s of a trivial JSON GET over loopback keep-alive connections.
add_executable(bench_http ${CMAKE_CURRENT_LIST_DIR}/http_bench.cc)
target_link_libraries(bench_http PRIVATE fjord_http)
