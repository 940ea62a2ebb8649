# fjord-sim: the scheduler simulator (see src/scheduler/README.md). Built under bench/.
add_executable(fjord-sim sim/main.cc sim/workload.cc sim/checker.cc sim/durable.cc)
target_include_directories(fjord-sim PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(fjord-sim PRIVATE fjord_scheduler fjord_store nlohmann_json::nlohmann_json)

if(FJORD_TESTS)
  # Small and fast: exits non-zero when the independent checker finds any violation or a
  # displaced task is left pending. Not a timed assertion.
  add_test(NAME scheduler_sim_small COMMAND fjord-sim --machines 200 --tasks 5000)
  add_test(NAME scheduler_sim_lose COMMAND fjord-sim --machines 200 --tasks 5000 --seed 7
                                           --lose-percent 10)
  # Every placement durable in a real SQLite store (temp dir under /var/tmp, removed at exit),
  # read back and re-checked; exits 1 on a store/scheduler mismatch or any violation. The
  # regexes make sure the store check and the checker on the store's schedule really ran.
  add_test(NAME scheduler_sim_through_store_flag
           COMMAND sh -c "out=$(\"$0\" --machines 200 --tasks 5000 --through-store --batch 64) \
             && printf '%s\\n' \"$out\" \
             && printf '%s\\n' \"$out\" | grep -q 'store check: .*: ok$' \
             && printf '%s\\n' \"$out\" | grep -q 'quality from the store: .*violations: 0 '"
             $<TARGET_FILE:fjord-sim>)
endif()

add_executable(bench_scheduler sim/bench_scheduler.cc sim/workload.cc)
target_include_directories(bench_scheduler PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(bench_scheduler PRIVATE fjord_scheduler benchmark::benchmark)
