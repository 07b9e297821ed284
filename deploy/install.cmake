# `cmake --install build --prefix P` and the Debian package (cpack -G DEB).
# Layout (docs/OPERATIONS.md):
#   P/bin/cpis-gateway
#   P/share/cpis-gateway/profiles/        found by the binary with no flag (BINDIR/../share/cpis-gateway/profiles)
#   P/share/cpis-gateway/web/             /dashboard and /console (the profiles directory's sibling)
#   P/share/cpis-gateway/make-dev-pki.sh  a trial PKI, never for production
#   P/share/doc/cpis-gateway/             README, docs/, adapter formats, config.example.json
#   P/lib/systemd/system/cpis-gateway.service
#   P/etc/cpis-gateway/config.json        (/etc/cpis-gateway when P is /usr, as for the .deb)
include(GNUInstallDirs)
# `install` and CPack's preinstall step would otherwise build every target
# (tests, benchmarks) first; packaging needs the gateway only, built before.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)

set(GW_DOCDIR ${CMAKE_INSTALL_DATADIR}/doc/cpis-gateway)
install(TARGETS cpis-gateway RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/profiles/ DESTINATION ${CMAKE_INSTALL_DATADIR}/cpis-gateway/profiles)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/cpis-gateway/web)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/certs/make-dev-pki.sh DESTINATION ${CMAKE_INSTALL_DATADIR}/cpis-gateway)
file(GLOB GW_DOCS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${GW_DOCS} ${PROJECT_SOURCE_DIR}/deploy/config.example.json
              ${PROJECT_SOURCE_DIR}/deploy/debian/copyright
        DESTINATION ${GW_DOCDIR})
file(GLOB GW_FORMATS RELATIVE ${PROJECT_SOURCE_DIR}/adapters ${PROJECT_SOURCE_DIR}/adapters/*/FORMAT.md)
foreach(f ${GW_FORMATS})
  get_filename_component(fmt ${f} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/adapters/${f} DESTINATION ${GW_DOCDIR}/formats RENAME ${fmt}.md)
endforeach()

# The unit and the config depend on the prefix given at install time (not the
# one configured), so they are written by a script that runs then.
install(CODE "set(GW_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")\nset(GW_STAGING \"${CMAKE_BINARY_DIR}/install-staging\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/deploy/install-prefixed.cmake)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cpis-gateway)
set(CPACK_PACKAGE_VENDOR "cpis-gateway")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "FHIR R4 integration and CP-IS information-sharing gateway")
set(CPACK_PACKAGE_DESCRIPTION
    "HL7 FHIR R4 integration and child-protection information-sharing gateway
for NHS trusts: legacy feeds (HL7 v2 over MLLP, CAMHS, CASH/GUM and CP-IS
files) translated to FHIR keyed on the NHS number, stored durably, and served
over a mutual-TLS FHIR REST API with subscriptions.")
# A trust building its own package names its own maintainer here.
set(GW_PACKAGE_MAINTAINER "cpis-gateway maintainers <cpis-gateway@example.nhs.uk>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT "${GW_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared libraries (libssl3, libsqlite3-0, libxml2, libcsv3, libstdc++6...) come
# from dpkg-shlibdeps on the built binary, so they cannot drift from the link line.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Only the gateway: no tests, benchmarks or fuzzers have install rules.
include(CPack)
