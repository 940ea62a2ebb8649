fjord_fuzz(http_url SOURCES http_url_fuzz.cc LIBS fjord_http)
