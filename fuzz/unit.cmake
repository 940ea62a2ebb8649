fjord_fuzz(unit_parser SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit_parser_fuzz.cc LIBS fjord_unit)
