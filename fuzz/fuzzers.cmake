# Every libFuzzer target, one freshframe_fuzzer(NAME SOURCES ... LIBS ...)
# call each: fuzz/NAME_fuzzer.cpp plus the src/ files it exercises. Included
# by both builds: fuzz/CMakeLists.txt (clang) builds the targets;
# tests/CMakeLists.txt only records the names and runs each as ctest
# `fuzz.NAME` on the seeds in fuzz/corpus/NAME/ (with fuzz/NAME.dict if
# there is one).
find_package(spdlog REQUIRED)
freshframe_fuzzer(request SOURCES http/router.cpp http/auth.cpp core/credentials.cpp LIBS spdlog::spdlog)
freshframe_fuzzer(ws_frame SOURCES http/ws_frame.cpp)
freshframe_fuzzer(config_json SOURCES http/config_api.cpp)
freshframe_fuzzer(mjpeg_source SOURCES capture/mjpeg_stream.cpp capture/remote_clock.cpp httpclient/http_response.cpp httpclient/multipart_body.cpp httpclient/multipart_parser.cpp)
freshframe_fuzzer(bus_header SOURCES bus/shm_object.cpp bus/bus_reader.cpp bus/bus.cpp core/frame.cpp LIBS opencv_core)
freshframe_fuzzer(detections_json SOURCES infer/detections_json.cpp LIBS opencv_core)
freshframe_fuzzer(sdp_offer SOURCES webrtc/sdp_offer.cpp)
freshframe_fuzzer(rtcp SOURCES rtp/rtcp.cpp)
freshframe_fuzzer(rtsp_auth SOURCES rtsp/credentials.cpp core/credentials.cpp)
