fjord_fuzz(api_decode SOURCES api_decode_fuzz.cc LIBS fjord_api)
