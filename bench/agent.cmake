# The agent's Supervisor: Apply-to-running latency and RSS with 100 running units (root only).
add_executable(bench_supervisor ${CMAKE_CURRENT_SOURCE_DIR}/supervisor_bench.cc)
target_link_libraries(bench_supervisor PRIVATE fjord_agent)

# Control-plane figures with the real binaries: `fjord start` -> process running, and the agent's
# RSS with 100 units (a plain script; needs root).
if(TARGET fjord)
  file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/bench_agent_figures
       CONTENT "#!/bin/sh\nexec ${PROJECT_SOURCE_DIR}/bench/agent_figures.sh $<TARGET_FILE:fjord> \"$@\"\n"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
                        WORLD_EXECUTE)
endif()
