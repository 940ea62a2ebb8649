# runtime_log: container log records and the attach stream (its exit record).
fjord_fuzz(runtime_log SOURCES runtime_log_fuzz.cc LIBS fjord_runtime)
