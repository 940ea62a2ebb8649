# The image module's parsers of untrusted JSON (OCI index/manifest, image config, docker
# manifest.json, the store index) and image references.
fjord_fuzz(image_json SOURCES image_json_fuzz.cc LIBS fjord_image)
