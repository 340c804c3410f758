# pickleway_add_plugin(NAME SOURCES src...)
#
# Builds a pickleway plugin: a shared library named pickleway_NAME.so that
# sees only the public headers, with hidden symbols but for its exported
# descriptor. The bundled plugins and out-of-tree ones use this same function.
function(pickleway_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;LIBRARIES")
  add_library(pickleway_plugin_${name} MODULE ${arg_SOURCES})
  target_link_libraries(pickleway_plugin_${name} PRIVATE pickleway::sdk ${arg_LIBRARIES})
  if(TARGET pickleway_warnings)
    target_link_libraries(pickleway_plugin_${name} PRIVATE pickleway_warnings)
  endif()
  set_target_properties(pickleway_plugin_${name} PROPERTIES
    OUTPUT_NAME pickleway_${name}
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET pickleway_plugins)  # in-tree: `pickleway_plugins` builds them all,
    add_dependencies(pickleway_plugins pickleway_plugin_${name})
    # and `cmake --install` puts them where the installed pickleway looks.
    install(TARGETS pickleway_plugin_${name} LIBRARY DESTINATION lib/pickleway/plugins)
  endif()
  if(PICKLEWAY_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(pickleway_plugin_${name} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${PICKLEWAY_PLUGIN_OUTPUT_DIRECTORY})
  endif()
endfunction()
