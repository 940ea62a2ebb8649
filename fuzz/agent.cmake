# agent_notify: the sd_notify datagram reader (DrainNotify, ParseNotify) over a real socket.
fjord_fuzz(agent_notify SOURCES agent_notify_fuzz.cc LIBS fjord_agent)
