#include "metadata/filters.h"

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metadata/types.h"

namespace cpp_overlay::metadata {
namespace {

using ::testing::HasSubstr;

// The chain id and backend parent key of containerd's remote-snapshot lookup.
constexpr char kChainId[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kParentKey[] =
    "default/12/extract-170000000 sha256:"
    "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

Info CommittedLayer() {
  Info info;
  info.name = "default/13/sha256:layer";
  info.parent = kParentKey;
  info.kind = Kind::kCommitted;
  info.labels = {
      {"containerd.io/snapshot.ref", kChainId},
      {"team", "a"},
      {"dotted.key.name", "v"},
      {"empty", ""},
      {"note", "a, b"},
      {"esc", "tab\there"},
      {"accent", "\xc3\xa9"},
      {"eq", "a=b"},
      {"say \"hi\"", "yes"},
      {"1st_key", "v"},
  };
  return info;
}

Info ActiveWithoutParent() {
  Info info;
  info.name = "extract-1 sha256:x";
  info.kind = Kind::kActive;
  return info;
}

Info View() {
  Info info;
  info.name = "view-1";
  info.parent = "default/3/sha256:layer";
  info.kind = Kind::kView;
  info.labels = {{"team", "b"}};
  return info;
}

Info ActiveNamed(std::string name) {
  Info info;
  info.name = std::move(name);
  info.kind = Kind::kActive;
  return info;
}

Info UnknownKind() {
  Info info;
  info.name = "odd";
  return info;
}

struct MatchCase {
  std::string claim;
  std::vector<std::string> filters;
  Info info;
  bool want;
};

void PrintTo(const MatchCase& c, std::ostream* os) { *os << c.claim; }

class FilterMatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(FilterMatchTest, MatchesAsContainerdDoes) {
  const MatchCase& c = GetParam();
  absl::StatusOr<Filter> filter = Filter::Parse(c.filters);
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_EQ(filter->Matches(c.info), c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Filters, FilterMatchTest,
    ::testing::ValuesIn(std::vector<MatchCase>{
        // name
        {"NameEqualMatchesSameName", {"name==view-1"}, View(), true},
        {"NameEqualRejectsOtherName", {"name==view-2"}, View(), false},
        {"NameNotEqualMatchesOtherName", {"name!=view-2"}, View(), true},
        {"NameNotEqualRejectsSameName", {"name!=view-1"}, View(), false},
        {"NameRegexpMatchesUnanchored", {"name~=iew"}, View(), true},
        {"NameRegexpHonoursAnchors", {"name~=^iew"}, View(), false},
        {"NamePresenceMatches", {"name"}, View(), true},
        {"NameIgnoresFurtherPathComponents",
         {"name.whatever==view-1"},
         View(),
         true},
        {"QuotedFieldNameIsTheSameField", {"\"name\"==view-1"}, View(), true},
        {"FieldNamesAreCaseSensitive", {"Name==view-1"}, View(), false},
        {"BareValueMayContainSpacesOnlyWhenQuoted",
         {"name==\"extract-1 sha256:x\""},
         ActiveWithoutParent(),
         true},
        // parent
        {"ParentEqualMatchesSameParent",
         {"parent==\"default/3/sha256:layer\""},
         View(),
         true},
        {"ParentEqualRejectsOtherParent",
         {"parent==\"default/4/sha256:layer\""},
         View(),
         false},
        {"ParentEqualEmptyMatchesNoParent",
         {"parent==\"\""},
         ActiveWithoutParent(),
         true},
        {"ParentNotEqualMatchesOtherParent",
         {"parent!=\"default/4/sha256:layer\""},
         View(),
         true},
        {"ParentNotEqualRejectsSameParent",
         {"parent!=\"default/3/sha256:layer\""},
         View(),
         false},
        {"ParentPresenceMatchesEvenWithoutParent",
         {"parent"},
         ActiveWithoutParent(),
         true},
        {"ParentRegexpMatches",
         {"parent~=^default/[0-9]+/sha256:"},
         View(),
         true},
        {"ParentRegexpRejects", {"parent~=^default/4/"}, View(), false},
        // kind
        {"KindEqualActiveMatchesActive",
         {"kind==active"},
         ActiveWithoutParent(),
         true},
        {"KindEqualViewMatchesView", {"kind==view"}, View(), true},
        {"KindEqualCommittedMatchesCommitted",
         {"kind==committed"},
         CommittedLayer(),
         true},
        {"KindEqualActiveRejectsCommitted",
         {"kind==active"},
         CommittedLayer(),
         false},
        {"KindEqualUsesLowercaseNames", {"kind==View"}, View(), false},
        {"KindNotEqualMatchesOtherKind", {"kind!=active"}, View(), true},
        {"KindNotEqualRejectsSameKind", {"kind!=view"}, View(), false},
        {"KindNotEqualMatchesUnknownKind",
         {"kind!=active"},
         UnknownKind(),
         true},
        {"KindEqualUnknownNeverMatches",
         {"kind==unknown"},
         UnknownKind(),
         false},
        {"KindRegexpAlternationMatches",
         {"kind~=^(view|active)$"},
         ActiveWithoutParent(),
         true},
        {"KindRegexpAlternationRejects",
         {"kind~=^(view|active)$"},
         CommittedLayer(),
         false},
        {"KindPresenceMatchesKnownKind", {"kind"}, View(), true},
        {"KindPresenceRejectsUnknownKind", {"kind"}, UnknownKind(), false},
        // labels
        {"LabelEqualMatchesValue", {"labels.team==a"}, CommittedLayer(), true},
        {"LabelEqualRejectsOtherValue",
         {"labels.team==b"},
         CommittedLayer(),
         false},
        {"LabelEqualRejectsMissingLabel",
         {"labels.nope==a"},
         CommittedLayer(),
         false},
        {"LabelEqualEmptyMatchesEmptyLabel",
         {"labels.empty==\"\""},
         CommittedLayer(),
         true},
        {"LabelEqualEmptyRejectsMissingLabel",
         {"labels.nope==\"\""},
         CommittedLayer(),
         false},
        {"LabelNotEqualMatchesOtherValue",
         {"labels.team!=b"},
         CommittedLayer(),
         true},
        {"LabelNotEqualRejectsSameValue",
         {"labels.team!=a"},
         CommittedLayer(),
         false},
        {"LabelNotEqualMatchesMissingLabel",
         {"labels.nope!=a"},
         CommittedLayer(),
         true},
        {"LabelNotEqualMatchesSnapshotWithoutLabels",
         {"labels.team!=a"},
         ActiveWithoutParent(),
         true},
        {"LabelNotEqualEmptyRejectsMissingLabel",
         {"labels.nope!=\"\""},
         CommittedLayer(),
         false},
        {"LabelNotEqualEmptyRejectsEmptyLabel",
         {"labels.empty!=\"\""},
         CommittedLayer(),
         false},
        {"LabelRegexpMatches", {"labels.team~=^[ab]$"}, View(), true},
        {"LabelRegexpRejects", {"labels.team~=^[cd]$"}, View(), false},
        {"LabelRegexpMatchesMissingLabelAsEmpty",
         {"labels.nope~=^$"},
         CommittedLayer(),
         true},
        {"LabelRegexpRejectsMissingLabelWhenEmptyDoesNotMatch",
         {"labels.nope~=x"},
         CommittedLayer(),
         false},
        {"LabelPresenceMatchesExistingKey",
         {"labels.team"},
         CommittedLayer(),
         true},
        {"LabelPresenceMatchesEmptyValuedLabel",
         {"labels.empty"},
         CommittedLayer(),
         true},
        {"LabelPresenceRejectsMissingKey",
         {"labels.nope"},
         CommittedLayer(),
         false},
        {"LabelPresenceRejectsSnapshotWithoutLabels",
         {"labels.team"},
         ActiveWithoutParent(),
         false},
        {"LabelsWithoutKeyLooksUpTheEmptyKey",
         {"labels"},
         CommittedLayer(),
         false},
        {"LabelKeyJoinsBareComponentsWithDots",
         {"labels.dotted.key.name==v"},
         CommittedLayer(),
         true},
        {"LabelKeyMayBeQuotedWhole",
         {"labels.\"dotted.key.name\"==v"},
         CommittedLayer(),
         true},
        {"LabelKeyMayMixQuotedAndBareComponents",
         {"labels.\"dotted.key\".name==v"},
         CommittedLayer(),
         true},
        {"BareLabelKeyMayStartWithDigit",
         {"labels.1st_key==v"},
         CommittedLayer(),
         true},
        {"QuotedLabelKeyUnescapesQuotes",
         {"labels.\"say \\\"hi\\\"\"==yes"},
         CommittedLayer(),
         true},
        {"QuotedLabelKeyWithSlashMatches",
         {"labels.\"containerd.io/snapshot.ref\""},
         CommittedLayer(),
         true},
        // unknown fields
        {"UnknownFieldEqualNeverMatches",
         {"created==x"},
         CommittedLayer(),
         false},
        {"UnknownFieldPresenceNeverMatches", {"id"}, CommittedLayer(), false},
        {"UnknownFieldNotEqualMatchesAsEmpty",
         {"foo!=x"},
         CommittedLayer(),
         true},
        {"UnknownFieldRegexpMatchesAsEmpty",
         {"foo~=\".*\""},
         CommittedLayer(),
         true},
        // values and quoting
        {"DoubleQuotedValueMayContainCommaAndSpace",
         {"labels.note==\"a, b\""},
         CommittedLayer(),
         true},
        {"DoubleQuotedValueUnescapesTab",
         {"labels.esc==\"tab\\there\""},
         CommittedLayer(),
         true},
        {"DoubleQuotedValueUnescapesUnicode",
         {"labels.accent==\"\\u00e9\""},
         CommittedLayer(),
         true},
        {"DoubleQuotedValueUnescapesHexBytes",
         {"labels.accent==\"\\xc3\\xa9\""},
         CommittedLayer(),
         true},
        {"DoubleQuotedValueUnescapesOctalBytes",
         {"labels.accent==\"\\303\\251\""},
         CommittedLayer(),
         true},
        {"BareValueMayBeNonAscii",
         {"labels.accent==\xc3\xa9"},
         CommittedLayer(),
         true},
        {"BareValueMayContainEquals",
         {"labels.eq==a=b"},
         CommittedLayer(),
         true},
        {"BareValueMayContainQuoteCharactersAfterItsStart",
         {"name~=v\"?iew"},
         View(),
         true},
        {"BareValueKeepsSlashesAndColons",
         {"parent==default/3/sha256:layer"},
         View(),
         true},
        {"SlashQuotedRegexpMatches", {"name~=/^view-[0-9]$/"}, View(), true},
        {"SlashQuotedRegexpUnescapesSlash",
         {"parent~=/^default\\/3\\//"},
         View(),
         true},
        {"PipeQuotedRegexpMatches", {"parent~=|^default/3/|"}, View(), true},
        {"PipeQuotedRegexpUnescapesPipe", {"name~=|x\\|view|"}, View(), true},
        {"DoubleQuotedRegexpMatches", {"name~=\"^view-1$\""}, View(), true},
        {"RegexpIsCaseSensitiveByDefault", {"name~=VIEW"}, View(), false},
        {"RegexpAcceptsGoFlags", {"name~=(?i)VIEW"}, View(), true},
        {"RegexpAnyByteEscapeInsideQuoteIsLiteral",
         {"name~=\"\\\\Q\\\\C\\\\E\""},
         ActiveNamed("a\\Cb"),
         true},
        {"RegexpAcceptsGoScripts", {"name~=\\p{Latin}"}, View(), true},
        {"RegexpAcceptsNamedGroups", {"name~=(?P<n>view)-1"}, View(), true},
        {"WhitespaceAroundOperatorIsIgnored", {"name == view-1"}, View(), true},
        {"WhitespaceAfterCommaIsIgnored",
         {"name==view-1,  kind==view"},
         View(),
         true},
        {"LeadingWhitespaceIsIgnored", {"  name==view-1"}, View(), true},
        {"WhitespaceAfterFieldSeparatorIsIgnored",
         {"labels. team==b"},
         View(),
         true},
        // AND and OR
        {"CommaMatchesWhenAllSelectorsMatch",
         {"name==view-1,kind==view,labels.team==b"},
         View(),
         true},
        {"CommaRejectsWhenOneSelectorFails",
         {"name==view-1,kind==active"},
         View(),
         false},
        {"SeveralFiltersMatchWhenAnyMatches",
         {"name==nope", "kind==view"},
         View(),
         true},
        {"SeveralFiltersRejectWhenNoneMatches",
         {"name==nope", "kind==active"},
         View(),
         false},
        {"EmptyListMatchesEverything", {}, UnknownKind(), true},
        {"EmptyStringFilterMatchesEverything", {""}, UnknownKind(), true},
        {"EmptyStringAmongFiltersMatchesEverything",
         {"name==nope", ""},
         View(),
         true},
        // the filter containerd sends after AlreadyExists from Prepare
        {"ContainerdRemoteSnapshotLookupMatches",
         {std::string("labels.\"containerd.io/snapshot.ref\"==") + kChainId +
          ",parent==\"" + kParentKey + "\""},
         CommittedLayer(),
         true},
        {"ContainerdRemoteSnapshotLookupRejectsOtherParent",
         {std::string("labels.\"containerd.io/snapshot.ref\"==") + kChainId +
          ",parent==\"default/12/other\""},
         CommittedLayer(),
         false},
        {"ContainerdRemoteSnapshotLookupRejectsOtherChain",
         {std::string("labels.\"containerd.io/snapshot.ref\"==sha256:0,"
                      "parent==\"") +
          kParentKey + "\""},
         CommittedLayer(),
         false},
        {"ContainerdRemoteSnapshotLookupRejectsUnlabelled",
         {std::string("labels.\"containerd.io/snapshot.ref\"==") + kChainId +
          ",parent==\"\""},
         ActiveWithoutParent(),
         false},
    }),
    [](const ::testing::TestParamInfo<MatchCase>& info) {
      return info.param.claim;
    });

struct ErrorCase {
  std::string claim;
  std::vector<std::string> filters;
  std::string message;  // a substring of the error message
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.claim; }

class FilterErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(FilterErrorTest, FailsWithInvalidArgument) {
  const ErrorCase& c = GetParam();
  absl::StatusOr<Filter> filter = Filter::Parse(c.filters);
  ASSERT_FALSE(filter.ok());
  EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(filter.status().message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Filters, FilterErrorTest,
    ::testing::ValuesIn(std::vector<ErrorCase>{
        // missing pieces
        {"EqualWithoutValue", {"name=="}, "filter \"name==\": expected value"},
        {"NotEqualWithoutValue", {"name!="}, "expected value"},
        {"MatchWithoutValue", {"name~="}, "expected value"},
        {"OperatorFollowedOnlyBySpace", {"name==  "}, "expected value"},
        {"ValueStartingWithSeparator", {"name==.x"}, "expected value"},
        {"BareRegexpStartingWithDot", {"name~=.*"}, "expected value"},
        {"ValueStartingWithOperatorCharacter", {"name== !x"}, "expected value"},
        {"TrailingComma", {"name==a,"}, "expected field"},
        {"LeadingComma", {",name==a"}, "expected field"},
        {"EmptySelectorBetweenCommas",
         {"name==a,,kind==view"},
         "expected field"},
        {"LeadingFieldSeparator", {".name"}, "expected field"},
        {"TrailingFieldSeparator", {"labels."}, "expected field"},
        {"EmptyFieldPathComponent", {"labels..a==b"}, "expected field"},
        {"OnlyWhitespace", {"   "}, "expected field"},
        {"OperatorWithoutField", {"==a"}, "expected field"},
        // operators
        {"SingleEqualsIsNotAnOperator",
         {"name=a"},
         "unsupported operator \"=\""},
        {"TripleEqualsIsNotAnOperator", {"name===a"}, "unsupported operator"},
        {"NotEqualFollowedByBangIsNotAnOperator",
         {"name!=!a"},
         "unsupported operator"},
        {"UnknownOperatorCharacters", {"name<>a"}, "expected operator"},
        {"HyphenInBareLabelKey", {"labels.foo-bar==x"}, "expected operator"},
        {"SpaceBeforeCommaAfterBareField", {"name ,kind"}, "expected operator"},
        {"TrailingSpaceAfterBareField", {"name "}, "expected operator"},
        // trailing characters
        {"TrailingSpaceAfterValue",
         {"name==a "},
         "unexpected input at offset 7"},
        {"SpaceBeforeComma", {"name==a ,kind==view"}, "unexpected input"},
        {"CharactersAfterQuotedValue", {"name==\"a\"b"}, "unexpected input"},
        {"CharactersAfterRegexp", {"name~=/a/b"}, "unexpected input"},
        // quoting
        {"SlashQuotedValueForEqual", {"name==/abs/"}, "only ~= accepts"},
        {"PipeQuotedValueForNotEqual", {"name!=|a|"}, "only ~= accepts"},
        {"SlashQuotedFieldPathComponent", {"labels./a/==x"}, "only ~= accepts"},
        {"UnterminatedDoubleQuotedValue",
         {"name==\"abc"},
         "quoted literal not terminated"},
        {"UnterminatedQuotedFieldPathComponent",
         {"labels.\"a==b"},
         "quoted literal not terminated"},
        {"UnterminatedSlashQuotedRegexp",
         {"name~=/abc"},
         "quoted literal not terminated"},
        {"NewlineInsideQuotes",
         {"name==\"a\nb\""},
         "quoted literal not terminated"},
        {"UnknownEscape", {"name==\"a\\qb\""}, "illegal escape sequence"},
        {"EscapedDoubleQuoteInsideSlashes",
         {"name~=/a\\\"b/"},
         "illegal escape sequence"},
        {"ShortHexEscape",
         {"name==\"\\x4\""},
         "illegal numeric escape sequence"},
        {"OctalEscapeAboveByte", {"name==\"\\777\""}, "invalid quoted string"},
        {"UnicodeEscapeAboveMaxRune",
         {"name==\"\\U00110000\""},
         "invalid quoted string"},
        // bytes the scanner rejects
        {"NulCharacter", {std::string("name==a\0b", 9)}, "unexpected null"},
        {"InvalidUtf8", {"name==a\xff"}, "invalid utf-8"},
        // regexps
        {"UnbalancedParenthesisInRegexp",
         {"name~=(a"},
         "invalid regexp \"(a\""},
        {"UnterminatedClassInRegexp", {"name~=\"[a-\""}, "invalid regexp"},
        {"NestedRepetitionInRegexp", {"name~=a**"}, "invalid regexp"},
        {"BackreferenceInRegexp", {"name~=(a)\\1"}, "invalid regexp"},
        // RE2 accepts these but Go's regexp, which containerd uses, does not.
        {"AnyByteEscapeInRegexp", {"name~=a\\C"}, "invalid regexp"},
        {"NonAsciiCaptureNameInRegexp",
         {"name~=(?P<\xc3\xa9>a)"},
         "invalid named capture"},
        {"ScriptNewerThanGoInRegexp",
         {"name~=\\p{Vithkuqi}"},
         "invalid regexp"},
        // which filter
        {"ErrorNamesTheFailingFilterOfSeveral",
         {"name==a", "kind==view,"},
         "filter \"kind==view,\": expected field"},
    }),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      return info.param.claim;
    });

TEST(FilterTest, EmptyListMatchesAll) {
  absl::StatusOr<Filter> filter = Filter::Parse({});
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_TRUE(filter->MatchesAll());
}

TEST(FilterTest, EmptyStringFilterMatchesAll) {
  absl::StatusOr<Filter> filter = Filter::Parse({"kind==view", ""});
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_TRUE(filter->MatchesAll());
}

TEST(FilterTest, NonEmptyFilterDoesNotMatchAll) {
  absl::StatusOr<Filter> filter = Filter::Parse({"kind==view"});
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_FALSE(filter->MatchesAll());
}

TEST(FilterTest, ErrorAtEndOfInputHasNoOffset) {
  absl::StatusOr<Filter> filter = Filter::Parse({"name=="});
  EXPECT_EQ(filter.status(),
            absl::InvalidArgumentError("filter \"name==\": expected value"));
}

// A parsed filter keeps every regexp it compiled, where containerd compiles
// one at a time: one request's regexps share one memory budget, so a few
// kilobytes of filter cannot make the daemon compile gigabytes.
TEST(FilterTest, OneRequestsRegexpsShareOneMemoryBudget) {
  const std::string big = "name~=[\\p{L}\\p{N}]{1000}";
  EXPECT_TRUE(Filter::Parse({big}).ok()) << "one large regexp alone fits";
  std::vector<std::string> many(64, big);
  absl::StatusOr<Filter> shared = Filter::Parse({absl::StrJoin(many, ",")});
  EXPECT_EQ(shared.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(shared.status().message()),
              HasSubstr("a request's regexps share 64 MiB"));
  std::vector<std::string> small(64, "name~=^a");
  EXPECT_TRUE(Filter::Parse({absl::StrJoin(small, ",")}).ok());
}

TEST(FilterTest, AtMost64RegexpsInOneRequest) {
  std::vector<std::string> filters(65, "name~=^a");
  absl::StatusOr<Filter> parsed = Filter::Parse(filters);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()),
              HasSubstr("65 regexps (~=) in one request; at most 64"));
}

// Errors name the filter and the pattern, cut: a request may be megabytes
// long, and the message goes to the log and back in a gRPC trailer.
TEST(FilterTest, ErrorsQuoteAtMostTheStartOfALongFilter) {
  const std::string padding(1 << 20, 'a');
  for (const std::string& filter :
       {"name==" + padding + ",(", "name~=(" + padding}) {
    absl::StatusOr<Filter> parsed = Filter::Parse({filter});
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_LT(parsed.status().message().size(), 2048u);
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr(absl::StrCat("(", filter.size(), " bytes)")));
  }
}

TEST(FilterTest, MovedFilterStillMatches) {
  absl::StatusOr<Filter> parsed = Filter::Parse({"name~=^view"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Filter filter = *std::move(parsed);
  EXPECT_TRUE(filter.Matches(View()));
  EXPECT_FALSE(filter.Matches(ActiveWithoutParent()));
}

}  // namespace
}  // namespace cpp_overlay::metadata
