# What the install adds for a system, and the Debian package of it all:
# `cpack -G DEB` in the build folder (docs/operations.md). The package's
# prefix is /usr: /usr/bin/pickleway finds its plugins in
# /usr/lib/pickleway/plugins, as every install does at PREFIX/lib.

set(PICKLEWAY_PYTHON_DIR "lib/python3/dist-packages" CACHE STRING
  "Where the Python helper pickleway_io goes, under the prefix (Debian's python3 reads lib/python3/dist-packages)")
install(FILES ${PROJECT_SOURCE_DIR}/tools/python/pickleway_io.py DESTINATION ${PICKLEWAY_PYTHON_DIR})

# The examples as they stand in the checkout, so that they run from there
# as from it: `cd /usr/share/doc/pickleway/examples && pickleway run configs/demo.yaml`.
set(doc_dir share/doc/pickleway)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs DESTINATION ${doc_dir}/examples)
install(FILES ${PROJECT_SOURCE_DIR}/tools/python/demo_producer.py
  ${PROJECT_SOURCE_DIR}/tools/python/demo_consumer.py DESTINATION ${doc_dir}/examples/tools/python)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${doc_dir})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs DESTINATION ${doc_dir})
# It runs /usr/bin/pickleway: the package's, whatever the install prefix.
install(FILES ${PROJECT_SOURCE_DIR}/tools/package/pickleway@.service DESTINATION lib/systemd/system)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pickleway)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "gateway for streams of Python pickles")
set(CPACK_PACKAGE_DESCRIPTION
  "pickleway frames the byte stream of each endpoint into whole pickle messages, passes each message through a chain of filter plugins (newline, compress, log, firewall) and writes it to the other endpoint through a transport plugin (spawn, stdio, fifo, unix, tcp with TLS). Sessions are described in YAML or on the command line (pickleway bridge). Includes the plugin SDK, the Python helper pickleway_io and a systemd template unit, pickleway@.service.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "pickleway developers")
# The libraries the binaries link (yaml-cpp, OpenSSL, zstd, lz4, zlib, the
# C++ runtime), found by dpkg-shlibdeps; python3 for pickleway_io and the
# usual peers; what building a plugin against the SDK takes.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cmake, g++, libboost-dev")
include(CPack)
