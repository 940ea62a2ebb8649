# The image module's parsers of untrusted JSON (OCI index/manifest, image config, docker
# manifest.json, the store index) and image references.
fjord_fuzz(image_json SOURCES image_json_fuzz.cc LIBS fjord_image)
# The layer unpacker on arbitrary (possibly hostile) tars: clean errors, nothing outside the
# layer directory. Seeds: small layers with whiteouts, links and traversal attempts.
fjord_fuzz(image_tar SOURCES image_tar_fuzz.cc LIBS fjord_image)
