# bench_net_attach: wall time of BridgeNetwork::Attach/Detach on real namespaces (root only).
add_executable(bench_net_attach ${CMAKE_CURRENT_LIST_DIR}/net_attach.cc)
target_link_libraries(bench_net_attach PRIVATE fjord_net_testing)
