# Turns a web page into a C++ source defining `extern const std::string_view SYMBOL`.
# Run as: cmake -DINPUT=... -DOUTPUT=... -DSYMBOL=... -P embed.cmake
#
# A line `<!--#include NAME-->` in INPUT is replaced by the file NAME from
# INPUT's folder, so the page is one response (one request, one auth check,
# nothing to cache separately) while its styles and scripts stay in small
# files of their own. Includes do not nest.
get_filename_component(dir ${INPUT} DIRECTORY)
file(READ ${INPUT} page)
string(REGEX MATCHALL "<!--#include [A-Za-z0-9_.-]+-->" markers "${page}")
foreach(marker IN LISTS markers)
  string(REGEX REPLACE "<!--#include ([A-Za-z0-9_.-]+)-->" "\\1" name "${marker}")
  if(NOT EXISTS ${dir}/${name})
    message(FATAL_ERROR "${INPUT}: included file ${dir}/${name} does not exist")
  endif()
  file(READ ${dir}/${name} part)
  string(REPLACE "${marker}" "${part}" page "${page}")
endforeach()
set(assembled ${OUTPUT}.page)
file(WRITE ${assembled} "${page}")

file(READ ${assembled} hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR byte_count "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUTPUT}
"// Generated from ${INPUT} by cmake/embed.cmake. Do not edit.\n"
"#include <string_view>\n"
"namespace freshframe::web {\n"
"namespace {\n"
"constexpr unsigned char kData[] = {\n${bytes}0x00};\n"
"}  // namespace\n"
"extern const std::string_view ${SYMBOL};\n"
"const std::string_view ${SYMBOL}{reinterpret_cast<const char*>(kData), ${byte_count}};\n"
"}  // namespace freshframe::web\n")
