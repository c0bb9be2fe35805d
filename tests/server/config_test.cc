// The config file: a good file, the documented example in deploy/, and each
// kind of bad file (syntax, unknown key, wrong type, bad value), whose error
// names the file, line and key.
#include "server/config.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace cpp_overlay::server {
namespace {

using ::cpp_overlay::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ConfigTest, GoodFileSetsEveryKey) {
  absl::StatusOr<Config> config = ParseConfig(R"(
address = "/run/x/x.sock"
root = "/var/lib/x"
log_level = "debug"
log_format = "json"
socket_group = "containerd"
socket_mode = 0o600
metrics_address = ":9091"
mount_options = ["volatile", "redirect_dir=on"]
upperdir_label = true
reclaim_entries_per_second = 5000
health_probe_interval = "250ms"
shutdown_grace = "3s"
)",
                                              "good.toml");
  ASSERT_OK(config);
  EXPECT_EQ(config->address, "/run/x/x.sock");
  EXPECT_EQ(config->root, "/var/lib/x");
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->log_format, "json");
  EXPECT_EQ(config->socket_group, "containerd");
  EXPECT_EQ(config->socket_mode, 0600u);
  EXPECT_EQ(config->metrics_address, ":9091");
  EXPECT_THAT(config->mount_options,
              ElementsAre("volatile", "redirect_dir=on"));
  EXPECT_TRUE(config->upperdir_label);
  EXPECT_EQ(config->reclaim_entries_per_second, 5000);
  EXPECT_EQ(config->health_probe_interval, absl::Milliseconds(250));
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(3));
}

TEST(ConfigTest, EmptyFileGivesDefaults) {
  absl::StatusOr<Config> config = ParseConfig("# nothing\n", "empty.toml");
  ASSERT_OK(config);
  EXPECT_EQ(config->address, kDefaultAddress);
  EXPECT_EQ(config->root, kDefaultRoot);
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->log_format, "text");
  EXPECT_EQ(config->socket_mode, 0660u);
  EXPECT_TRUE(config->metrics_address.empty());
  EXPECT_FALSE(config->upperdir_label);
  EXPECT_OK(ValidateConfig(*config));
}

TEST(ConfigTest, SocketModeAlsoTakesAnOctalString) {
  absl::StatusOr<Config> config =
      ParseConfig("socket_mode = \"0640\"\n", "m.toml");
  ASSERT_OK(config);
  EXPECT_EQ(config->socket_mode, 0640u);
}

// The example shipped in deploy/ parses, documents every key, and changes
// nothing (its values are the defaults).
TEST(ConfigTest, DeployExampleLoadsAndDocumentsEveryKey) {
  const std::string path =
      std::string(CPP_OVERLAY_SOURCE_DIR) + "/deploy/config.toml";
  absl::StatusOr<Config> config = LoadConfigFile(path);
  ASSERT_OK(config);
  EXPECT_OK(ValidateConfig(*config));
  const Config defaults;
  EXPECT_EQ(DescribeConfig(*config), DescribeConfig(defaults));

  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  for (const std::string& key : ConfigKeys()) {
    EXPECT_THAT(text.str(), HasSubstr("\n" + key + " = "))
        << "deploy/config.toml lacks " << key;
  }
}

TEST(ConfigTest, MissingFileIsNotFound) {
  cpp_overlay::testing::TempDir dir;
  EXPECT_THAT(LoadConfigFile(dir.path() + "/none.toml"),
              StatusIs(absl::StatusCode::kNotFound));
}

struct BadFile {
  const char* name;
  const char* text;
  const char* message;  // the whole expected message after "bad.toml:"
};

class BadConfigTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadConfigTest, IsRejectedNamingLineAndKey) {
  absl::StatusOr<Config> config = ParseConfig(GetParam().text, "bad.toml");
  ASSERT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(std::string(config.status().message()),
            std::string("bad.toml:") + GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    EachKindOfBadFile, BadConfigTest,
    ::testing::Values(
        BadFile{
            "UnknownKey", "root = \"/r\"\nadress = \"/x.sock\"\n",
            "2: unknown key \"adress\"; the keys are address, root, log_level, "
            "log_format, socket_group, socket_mode, metrics_address, "
            "mount_options, "
            "upperdir_label, reclaim_entries_per_second, "
            "health_probe_interval, "
            "shutdown_grace"},
        BadFile{"UnknownTable", "\n\n[metrics]\naddress = \":1\"\n",
                "3: unknown key \"metrics\"; the keys are address, root, "
                "log_level, "
                "log_format, socket_group, socket_mode, metrics_address, "
                "mount_options, "
                "upperdir_label, reclaim_entries_per_second, "
                "health_probe_interval, "
                "shutdown_grace"},
        BadFile{"WrongTypeString", "log_level = 3\n",
                "1: log_level: must be a string"},
        BadFile{"WrongTypeBool", "\nupperdir_label = \"yes\"\n",
                "2: upperdir_label: must be true or false"},
        BadFile{"WrongTypeList", "mount_options = \"volatile\"\n",
                "1: mount_options: must be an array of strings"},
        BadFile{"WrongTypeListElement", "mount_options = [\"volatile\", 1]\n",
                "1: mount_options: must be an array of strings"},
        BadFile{
            "BadLogLevel", "# c\nlog_level = \"verbose\"\n",
            "2: log_level: \"verbose\" is not one of trace, debug, info, warn, "
            "error, critical"},
        BadFile{"BadLogFormat", "log_format = \"xml\"\n",
                "1: log_format: \"xml\" is not one of text, json"},
        BadFile{"RelativeRoot", "root = \"var/lib/x\"\n",
                "1: root: \"var/lib/x\" must be an absolute path"},
        BadFile{"RelativeAddress", "address = \"x.sock\"\n",
                "1: address: \"x.sock\" must be an absolute path"},
        BadFile{"AddressEndingInASlash", "address = \"/run/x.sock/\"\n",
                "1: address: ends in /: give the socket file's path"},
        BadFile{
            "RootWithAComma", "root = \"/var/lib/a,b\"\n",
            "1: root: \"/var/lib/a,b\" holds ',', ':' or '\\', which overlay "
            "mount options cannot carry"},
        BadFile{
            "RootWithAColon", "root = \"/var/lib/a:b\"\n",
            "1: root: \"/var/lib/a:b\" holds ',', ':' or '\\', which overlay "
            "mount options cannot carry"},
        BadFile{"DecimalSocketMode", "socket_mode = 438\n",
                "1: socket_mode: 438 is not written in octal; write the mode "
                "as 0o660, or as a string, \"0660\""},
        BadFile{
            "BadSocketMode", "socket_mode = \"rw-rw----\"\n",
            "1: socket_mode: \"rw-rw----\" is not an octal mode such as 0660"},
        BadFile{
            "SocketModeWithSetuid", "socket_mode = 0o4660\n",
            "1: socket_mode: only permission bits (at most 0777) are allowed"},
        BadFile{"BadMetricsAddress", "metrics_address = \"localhost\"\n",
                "1: metrics_address: \"localhost\" is not host:port (e.g. "
                "127.0.0.1:9091 or :9091)"},
        BadFile{"MetricsHostName", "metrics_address = \"example.org:9091\"\n",
                "1: metrics_address: \"example.org:9091\": host "
                "\"example.org\" must be "
                "an IP address or localhost"},
        BadFile{"MetricsBadPort", "metrics_address = \"127.0.0.1:99999\"\n",
                "1: metrics_address: \"127.0.0.1:99999\": port \"99999\" is "
                "not 0-65535"},
        BadFile{"MountOptionWithComma", "mount_options = [\"a,b\"]\n",
                "1: mount_options: \"a,b\" must be one non-empty option "
                "without commas"},
        BadFile{"MountOptionOwnedBySnapshotter",
                "mount_options = [\"upperdir=/x\"]\n",
                "1: mount_options: \"upperdir=/x\": the snapshotter sets "
                "upperdir= itself"},
        BadFile{"NegativeReclaimRate", "reclaim_entries_per_second = -1\n",
                "1: reclaim_entries_per_second: must be 0 (unlimited) or more"},
        BadFile{"BadDuration", "shutdown_grace = \"ten seconds\"\n",
                "1: shutdown_grace: \"ten seconds\" is not a duration such as "
                "\"5s\" or "
                "\"500ms\""},
        BadFile{"DurationOutOfRange", "health_probe_interval = \"1ms\"\n",
                "1: health_probe_interval: 1ms must be 0 (off) or between "
                "100ms and 1h"},
        BadFile{"SyntaxError", "root = \"/r\"\nlog_level = \"info\n",
                "2: Error while parsing string: unescaped control characters "
                "other than "
                "TAB (U+0009) are explicitly prohibited"},
        BadFile{"DuplicateKey", "root = \"/a\"\nroot = \"/b\"\n",
                "2: Error while parsing key-value pair: cannot redefine "
                "existing string "
                "'root'"}),
    [](const ::testing::TestParamInfo<BadFile>& info) {
      return info.param.name;
    });

TEST(ConfigTest, ValidateConfigNamesTheKeyOfAFlagValue) {
  Config config;
  config.log_level = "loud";
  EXPECT_EQ(std::string(ValidateConfig(config).message()),
            "log_level: \"loud\" is not one of trace, debug, info, warn, "
            "error, critical");
}

TEST(ConfigTest, ParseHostPortDefaultsToLoopback) {
  absl::StatusOr<HostPort> empty_host = ParseHostPort(":9091");
  ASSERT_OK(empty_host);
  EXPECT_EQ(empty_host->host, "127.0.0.1");
  EXPECT_EQ(empty_host->port, 9091);
  absl::StatusOr<HostPort> v6 = ParseHostPort("[::1]:0");
  ASSERT_OK(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  EXPECT_THAT(ParseHostPort("::1:9091"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace cpp_overlay::server
