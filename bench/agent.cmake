# The agent's Supervisor: Apply-to-running latency and RSS with 100 running units (root only).
add_executable(bench_supervisor ${CMAKE_CURRENT_SOURCE_DIR}/supervisor_bench.cc)
target_link_libraries(bench_supervisor PRIVATE fjord_agent)
