# fjord-sim: the scheduler simulator (see src/scheduler/README.md). Built under bench/.
add_executable(fjord-sim sim/main.cc sim/workload.cc sim/checker.cc)
target_include_directories(fjord-sim PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(fjord-sim PRIVATE fjord_scheduler)

if(FJORD_TESTS)
  # Small and fast: exits non-zero when the independent checker finds any violation or a
  # displaced task is left pending. Not a timed assertion.
  add_test(NAME scheduler_sim_small COMMAND fjord-sim --machines 200 --tasks 5000)
  add_test(NAME scheduler_sim_lose COMMAND fjord-sim --machines 200 --tasks 5000 --seed 7
                                           --lose-percent 10)
  add_test(NAME scheduler_sim_through_store_flag COMMAND fjord-sim --through-store)
  set_tests_properties(scheduler_sim_through_store_flag PROPERTIES
                       PASS_REGULAR_EXPRESSION "not built with store support yet")
endif()

add_executable(bench_scheduler sim/bench_scheduler.cc sim/workload.cc)
target_include_directories(bench_scheduler PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(bench_scheduler PRIVATE fjord_scheduler benchmark::benchmark)
