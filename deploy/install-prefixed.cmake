# Runs at install time (install(SCRIPT) from deploy/install.cmake), when
# CMAKE_INSTALL_PREFIX is the prefix really used: `cmake --install --prefix P`
# or /usr for the .deb. file(INSTALL) adds DESTDIR itself.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(gw_etc "/etc")  # as GNUInstallDirs does for /usr: /usr/etc is not where Debian looks
else()
  set(gw_etc "${CMAKE_INSTALL_PREFIX}/etc")
endif()

file(READ "${GW_SOURCE_DIR}/deploy/cpis-gateway.service.in" unit)
string(REPLACE "@BINDIR@" "${CMAKE_INSTALL_PREFIX}/bin" unit "${unit}")
string(REPLACE "@SYSCONFDIR@" "${gw_etc}" unit "${unit}")
string(REPLACE "@DOCDIR@" "${CMAKE_INSTALL_PREFIX}/share/doc/cpis-gateway" unit "${unit}")
# A directory of its own per run: installs may run side by side (the tests do).
string(RANDOM LENGTH 12 run)
set(staged "${GW_STAGING}/${run}")
file(WRITE "${staged}/cpis-gateway.service" "${unit}")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${staged}/cpis-gateway.service")
file(REMOVE_RECURSE "${staged}")
# 0644 as Debian ships conffiles; the postinst makes it root:cpis-gateway 0640.
file(INSTALL DESTINATION "${gw_etc}/cpis-gateway" TYPE FILE RENAME config.json
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${GW_SOURCE_DIR}/deploy/config.installed.json")
