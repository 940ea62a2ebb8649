# net_parsers: --publish values, subnets and lease files (which feed iptables rules).
fjord_fuzz(net_parsers SOURCES net_parsers_fuzz.cc LIBS fjord_net)
