# Turns a file into a C++ source defining `extern const std::string_view SYMBOL`.
# Run as: cmake -DINPUT=... -DOUTPUT=... -DSYMBOL=... -P embed.cmake
file(READ ${INPUT} hex HEX)
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
