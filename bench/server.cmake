# bench_server_submit: concurrent PUTs to a real Server on SQLite, every ack durable (units/s).
# bench_list_units: a full listing of 100,000 stored units through the API, end to end.
# bench_server_place: the server's reconciler placing N stored units on M machines, durably.
if(TARGET fjord_server)
  foreach(b bench_server_submit bench_list_units bench_server_place)
    add_executable(${b} server_bench.cc)
    target_link_libraries(${b} PRIVATE fjord_server fjord_api fjord_http fjord_store fjord_unit
                                       spdlog::spdlog)
  endforeach()
endif()
