# Runtime benchmarks: fjord run vs crun run latency and the monitor's RSS (a plain script; run by
# bench/run.sh like every bench_* binary). Needs root and crun; skips itself otherwise.
if(TARGET fjord)
  file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/bench_runtime_vs_crun
       CONTENT "#!/bin/sh\nFJORD_SOURCE_DIR=${PROJECT_SOURCE_DIR} exec ${PROJECT_SOURCE_DIR}/bench/runtime_vs_crun.sh $<TARGET_FILE:fjord> \"$@\"\n"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
                        WORLD_EXECUTE)
endif()
