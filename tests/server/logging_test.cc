// JSON log lines: one object per line, every byte escaped so any key or
// message parses. (The daemon test parses a real daemon's log with python3.)
#include "server/logging.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/details/log_msg.h"

namespace cpp_overlay::server {
namespace {

using ::testing::MatchesRegex;

struct EscapeCase {
  std::string name;  // the case's name in test output
  std::string in;
  std::string out;
};

class JsonEscapeTest : public ::testing::TestWithParam<EscapeCase> {};

TEST_P(JsonEscapeTest, EscapesToValidJsonString) {
  EXPECT_EQ(JsonEscape(GetParam().in), GetParam().out);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, JsonEscapeTest,
    ::testing::Values(
        EscapeCase{"Quotes", "plain key=\"default/1/a b\"",
                   "plain key=\\\"default/1/a b\\\""},
        EscapeCase{"Backslash", "back\\slash", "back\\\\slash"},
        EscapeCase{"ControlCharacters", "line\nbreak\ttab\rcr", "line\\nbreak\\ttab\\rcr"},
        EscapeCase{"NulAndBell", std::string("nul\0bell\x07", 9), "nul\\u0000bell\\u0007"},
        EscapeCase{"ValidUtf8", "utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                   "utf-8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
        EscapeCase{"InvalidBytes", "bad \xff\xc3 end", "bad \\ufffd\\ufffd end"},
        EscapeCase{"OverlongEncoding", "overlong \xc0\xaf", "overlong \\ufffd\\ufffd"},
        EscapeCase{"Surrogate", "surrogate \xed\xa0\x80",
                   "surrogate \\ufffd\\ufffd\\ufffd"}),
    [](const ::testing::TestParamInfo<EscapeCase>& info) { return info.param.name; });

TEST(JsonFormatterTest, FormatsOneObjectPerLine) {
  auto formatter = NewJsonFormatter();
  spdlog::details::log_msg msg("cpp-overlay", spdlog::level::warn,
                               "Prepare key=\"k\" code=NOT_FOUND\nsecond line");
  spdlog::memory_buf_t buffer;
  formatter->format(msg, buffer);
  std::string line(buffer.data(), buffer.size());
  EXPECT_THAT(
      line,
      MatchesRegex(
          "\\{\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
          "\\.[0-9]{6}Z\",\"level\":\"warning\",\"logger\":\"cpp-overlay\","
          "\"msg\":\"Prepare key=\\\\\"k\\\\\" code=NOT_FOUND\\\\nsecond "
          "line\"\\}\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

}  // namespace
}  // namespace cpp_overlay::server
