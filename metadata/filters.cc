// A port of containerd 1.6's filters package (scanner, parser, unquoting and
// selector matching) and of the snapshot field adaptor in
// snapshots/storage/bolt.go. The scanner keeps containerd's rune-by-rune
// structure on purpose: its quirks (where whitespace is allowed, which
// characters end a bare value, which quotes each operator accepts) are part of
// the syntax containerd clients rely on.
#include "metadata/filters.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "metadata/errors.h"
#include "re2/re2.h"

namespace cpp_overlay::metadata {
namespace {

// Scanner results that are not characters; the values follow containerd's.
constexpr int32_t kEof = -1;
constexpr int32_t kQuoted = -2;
constexpr int32_t kValue = -3;
constexpr int32_t kField = -4;
constexpr int32_t kSeparator = -5;
constexpr int32_t kOperator = -6;
constexpr int32_t kIllegal = -7;

constexpr int32_t kRuneError = 0xFFFD;
constexpr int32_t kMaxRune = 0x10FFFF;

// Decodes one rune like Go's utf8.DecodeRuneInString: an invalid or
// truncated sequence (including overlong forms and surrogates) yields
// (kRuneError, 1); empty input yields (kRuneError, 0).
std::pair<int32_t, size_t> DecodeRune(std::string_view s) {
  if (s.empty()) return {kRuneError, 0};
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return {b0, 1};
  size_t size = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  int32_t rune = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    size = 2;
    rune = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    size = 3;
    rune = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    size = 4;
    rune = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {kRuneError, 1};
  }
  if (s.size() < size) return {kRuneError, 1};
  for (size_t i = 1; i < size; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < lo || b > hi) return {kRuneError, 1};
    lo = 0x80;
    hi = 0xBF;
    rune = (rune << 6) | (b & 0x3F);
  }
  return {rune, size};
}

// Like Go's utf8.EncodeRune: surrogates and out-of-range runes become U+FFFD.
void AppendRune(int32_t rune, std::string& out) {
  if (rune < 0 || rune > kMaxRune || (rune >= 0xD800 && rune <= 0xDFFF)) {
    rune = kRuneError;
  }
  const auto r = static_cast<uint32_t>(rune);
  if (r < 0x80) {
    out.push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (r >> 6)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (r >> 12)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (r >> 18)));
    out.push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

// Go's unicode.IsSpace.
bool IsSpaceRune(int32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// Go's unicode.IsGraphic: categories L, M, N, P, S and Zs. RE2's tables are
// Unicode 15 and Go 1.19's are Unicode 13, so characters first assigned in
// Unicode 14 or 15 end a bare value in containerd but not here.
bool IsGraphicRune(int32_t r) {
  if (r < 0) return false;
  if (r < 0x80) return r >= 0x20 && r < 0x7F;
  if (r < 0x100) return r >= 0xA0 && r != 0xAD;
  static const RE2* const kGraphic =
      new RE2(R"([\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}])");
  std::string encoded;
  AppendRune(r, encoded);
  return RE2::FullMatch(encoded, *kGraphic);
}

bool IsFieldRune(int32_t r) {
  return r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') ||
         (r >= '0' && r <= '9');
}

bool IsOperatorRune(int32_t r) { return r == '=' || r == '!' || r == '~'; }

bool IsQuoteRune(int32_t r) { return r == '/' || r == '|' || r == '"'; }

bool IsSeparatorRune(int32_t r) { return r == ',' || r == '.'; }

// containerd also tests IsLetter, IsDigit, IsNumber and IsPunct, all of which
// imply IsGraphic.
bool IsValueRune(int32_t r) {
  return r != ',' && !IsSpaceRune(r) && IsGraphicRune(r);
}

int DigitValue(int32_t r) {
  if (r >= '0' && r <= '9') return r - '0';
  if (r >= 'a' && r <= 'f') return r - 'a' + 10;
  if (r >= 'A' && r <= 'F') return r - 'A' + 10;
  return 16;
}

struct Token {
  size_t pos;
  int32_t kind;  // one of the k* token constants, or the character itself
  std::string_view text;
};

class Scanner {
 public:
  explicit Scanner(std::string_view input) : input_(input) {}

  // The offset where the most recently read rune ends.
  size_t ppos() const { return ppos_; }
  // The first scanning error, for reporting a kIllegal token.
  const std::string& error() const { return error_; }

  Token Scan() {
    int32_t ch = Next();
    size_t pos = pos_;
    while (true) {
      if (ch == kEof || ch == kIllegal) return {pos, ch, {}};
      if (IsQuoteRune(ch)) {
        const bool ok = ScanQuoted(ch);
        return {pos, ok ? kQuoted : kIllegal, input_.substr(pos, ppos_ - pos)};
      }
      if (IsSeparatorRune(ch)) {
        value_ = false;
        return {pos, kSeparator, input_.substr(pos, ppos_ - pos)};
      }
      if (IsOperatorRune(ch)) {
        while (IsOperatorRune(Peek())) Next();
        value_ = true;
        return {pos, kOperator, input_.substr(pos, ppos_ - pos)};
      }
      if (IsSpaceRune(ch)) {
        ch = Next();
        pos = pos_;
        continue;
      }
      if (value_) {
        while (IsValueRune(Peek())) Next();
        value_ = false;
        return {pos, kValue, input_.substr(pos, ppos_ - pos)};
      }
      if (IsFieldRune(ch)) {
        while (IsFieldRune(Peek())) Next();
        return {pos, kField, input_.substr(pos, ppos_ - pos)};
      }
      return {pos, ch, {}};
    }
  }

  int32_t Peek() {
    const size_t pos = pos_;
    const size_t ppos = ppos_;
    const int32_t ch = Next();
    pos_ = pos;
    ppos_ = ppos;
    return ch;
  }

 private:
  int32_t Next() {
    if (pos_ >= input_.size()) return kEof;
    pos_ = ppos_;
    const auto [rune, width] = DecodeRune(input_.substr(ppos_));
    ppos_ += width;
    if (width == 0) return kEof;
    // Like containerd, this also rejects a correctly encoded U+FFFD.
    if (rune == kRuneError) {
      SetError("invalid utf-8");
      return kIllegal;
    }
    if (rune == 0) {
      SetError("unexpected null");
      return kIllegal;
    }
    return rune;
  }

  // Called after the opening quote; false on an unterminated literal or a
  // bad escape (scanning still goes on to the closing quote).
  bool ScanQuoted(int32_t quote) {
    bool legal = true;
    int32_t ch = Next();
    while (ch != quote) {
      if (ch == '\n' || ch < 0) {
        SetError("quoted literal not terminated");
        return false;
      }
      if (ch == '\\') {
        const Escape escape = ScanEscape(quote);
        legal = legal && escape.legal;
        ch = escape.next;
      } else {
        ch = Next();
      }
    }
    return legal;
  }

  struct Escape {
    int32_t next;  // the rune after the escape (or where it went wrong)
    bool legal;
  };

  // Called after a backslash.
  Escape ScanEscape(int32_t quote) {
    const int32_t ch = Next();
    switch (ch) {
      case 'a':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
      case 'v':
      case '\\':
        return {Next(), true};
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7':
        return ScanDigits(ch, 8, 3);
      case 'x':
        return ScanDigits(Next(), 16, 2);
      case 'u':
        return ScanDigits(Next(), 16, 4);
      case 'U':
        return ScanDigits(Next(), 16, 8);
      default:
        if (ch == quote) return {Next(), true};
        SetError("illegal escape sequence");
        return {ch, false};
    }
  }

  // `ch` is the first digit.
  Escape ScanDigits(int32_t ch, int base, int count) {
    while (count > 0 && DigitValue(ch) < base) {
      ch = Next();
      --count;
    }
    if (count > 0) {
      SetError("illegal numeric escape sequence");
      return {ch, false};
    }
    return {ch, true};
  }

  void SetError(std::string_view message) {
    if (error_.empty()) error_ = std::string(message);
  }

  std::string_view input_;
  size_t pos_ = 0;      // where the current rune starts
  size_t ppos_ = 0;     // where the current rune ends
  bool value_ = false;  // an operator was just read, so a value comes next
  std::string error_;
};

// Go's strconv-style unquoting as containerd extends it to /.../ and |...|.
// `quoted` includes its delimiters. Empty on a syntax error.
std::optional<std::string> Unquote(std::string_view quoted) {
  if (quoted.size() < 2) return std::nullopt;
  const char quote = quoted.front();
  if (quote != quoted.back()) return std::nullopt;
  if (quote != '"' && quote != '/' && quote != '|') return std::nullopt;
  std::string_view s = quoted.substr(1, quoted.size() - 2);
  if (s.find('\n') != std::string_view::npos) return std::nullopt;
  if (s.find('\\') == std::string_view::npos &&
      s.find(quote) == std::string_view::npos) {
    return std::string(s);
  }
  std::string out;
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s[0]);
    if (c == static_cast<unsigned char>(quote)) return std::nullopt;
    if (c >= 0x80) {
      const auto [rune, width] = DecodeRune(s);
      AppendRune(rune, out);
      s.remove_prefix(width);
      continue;
    }
    if (c != '\\') {
      out.push_back(static_cast<char>(c));
      s.remove_prefix(1);
      continue;
    }
    if (s.size() < 2) return std::nullopt;
    const char e = s[1];
    s.remove_prefix(2);
    switch (e) {
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (s.size() < n) return std::nullopt;
        int64_t v = 0;
        for (size_t i = 0; i < n; ++i) {
          const int d = DigitValue(static_cast<unsigned char>(s[i]));
          if (d >= 16) return std::nullopt;
          v = (v << 4) | d;
        }
        s.remove_prefix(n);
        if (e == 'x') {
          // \xNN is a raw byte, not a rune.
          out.push_back(static_cast<char>(v));
        } else {
          if (v > kMaxRune) return std::nullopt;
          AppendRune(static_cast<int32_t>(v), out);
        }
        break;
      }
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7': {
        int v = e - '0';
        if (s.size() < 2) return std::nullopt;
        for (size_t i = 0; i < 2; ++i) {
          const int d = s[i] - '0';
          if (d < 0 || d > 7) return std::nullopt;
          v = (v << 3) | d;
        }
        s.remove_prefix(2);
        if (v > 255) return std::nullopt;
        out.push_back(static_cast<char>(v));
        break;
      }
      case '"':
      case '/':
      case '|':
        if (e != quote) return std::nullopt;
        out.push_back(e);
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

// Script names RE2's Unicode 15 tables know but Go 1.19's Unicode 13 do not.
bool IsScriptUnknownToGo(std::string_view name) {
  if (!name.empty() && name.front() == '^') name.remove_prefix(1);
  for (std::string_view script : {"Cypro_Minoan", "Kawi", "Nag_Mundari",
                                  "Old_Uyghur", "Tangsa", "Toto", "Vithkuqi"}) {
    if (name == script) return true;
  }
  return false;
}

// Memory all the regexps of one request may compile to and match with
// (RE2's max_mem bounds a regexp's program and its match caches), and how
// many there may be. containerd compiles a regexp again for every snapshot
// it matches, one at a time; a parsed filter keeps all of them. Go allows
// programs of up to 128 MiB, and RE2's default 8 MiB already rejects
// patterns as plain as [\p{L}\p{N}]{1000}; one regexp alone gets all of this.
constexpr int64_t kRegexpMemory = int64_t{64} << 20;
constexpr size_t kMaxRegexps = 64;

// RE2 accepts a few patterns Go 1.19's regexp rejects: \C, capture names
// beyond [A-Za-z0-9_], and scripts newer than Unicode 13. (They still differ
// at the limits: nesting depth, and program size above max_mem.)
absl::StatusOr<std::unique_ptr<const RE2>> CompileRegexp(
    const std::string& pattern, int64_t max_mem) {
  const std::string prefix =
      absl::StrCat("invalid regexp ", QuoteText(pattern), ": ");
  for (size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] != '\\') continue;
    const char escaped = pattern[++i];
    if (escaped == 'Q') {
      const size_t end = pattern.find("\\E", i);
      if (end == std::string::npos) break;
      i = end + 1;
    } else if (escaped == 'C') {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "invalid escape sequence: \\C"));
    } else if ((escaped == 'p' || escaped == 'P') && i + 1 < pattern.size() &&
               pattern[i + 1] == '{') {
      const size_t close = pattern.find('}', i);
      if (close == std::string::npos) continue;
      const std::string_view name =
          std::string_view(pattern).substr(i + 2, close - i - 2);
      if (IsScriptUnknownToGo(name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            prefix, "invalid character class range: ", std::string(name)));
      }
    }
  }
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(max_mem);
  auto regexp = std::make_unique<const RE2>(pattern, options);
  if (!regexp->ok()) {
    std::string error = regexp->error();
    // RE2's error ends with the part of the pattern at fault, which may be
    // most of it: quote that part cut, as the pattern itself is.
    const std::string& at_fault = regexp->error_arg();
    if (error.size() > 256 && absl::EndsWith(error, at_fault)) {
      error = absl::StrCat(error.substr(0, error.size() - at_fault.size()),
                           QuoteText(at_fault));
    }
    if (regexp->error_code() == RE2::ErrorPatternTooLarge) {
      absl::StrAppend(&error, " (over ", max_mem >> 10,
                      " KiB; a request's regexps share ", kRegexpMemory >> 20,
                      " MiB)");
    }
    return absl::InvalidArgumentError(absl::StrCat(prefix, error));
  }
  for (const auto& [name, index] : regexp->NamedCapturingGroups()) {
    for (const char c : name) {
      if (!IsFieldRune(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, "invalid named capture: ", name));
      }
    }
  }
  return regexp;
}

// Names the filter an error is in; filters may be megabytes long.
std::string FilterPrefix(std::string_view filter) {
  // Debian's Abseil has its own string_view type.
  return absl::StrCat(
      "filter ", QuoteText(absl::string_view(filter.data(), filter.size())),
      ": ");
}

enum class Operator { kPresent, kEqual, kNotEqual, kMatches };

struct Selector {
  std::string field;      // the first field path component
  std::string label_key;  // the other components joined with '.'
  Operator op = Operator::kPresent;
  std::string value;
  std::unique_ptr<const RE2> regexp;  // set for kMatches, from value
};

// Selectors that must all match.
using Conjunction = std::vector<Selector>;

class Parser {
 public:
  explicit Parser(std::string_view input) : input_(input), scanner_(input) {}

  absl::StatusOr<Conjunction> Parse() {
    Conjunction selectors;
    while (true) {
      absl::StatusOr<Selector> selector = ParseSelector();
      if (!selector.ok()) return selector.status();
      selectors.push_back(*std::move(selector));
      const int32_t next = scanner_.Peek();
      if (next == kEof) return selectors;
      if (next == kIllegal) return Error(scanner_.ppos(), scanner_.error());
      if (next != ',') return Error(scanner_.ppos(), "unexpected input");
      scanner_.Scan();
    }
  }

 private:
  absl::StatusOr<Selector> ParseSelector() {
    absl::StatusOr<std::vector<std::string>> fieldpath = ParseFieldPath();
    if (!fieldpath.ok()) return fieldpath.status();
    Selector selector;
    selector.field = fieldpath->front();
    selector.label_key =
        absl::StrJoin(fieldpath->begin() + 1, fieldpath->end(), ".");

    const int32_t next = scanner_.Peek();
    if (next == ',' || next == kEof) return selector;  // a presence test

    absl::StatusOr<Operator> op = ParseOperator();
    if (!op.ok()) return op.status();
    selector.op = *op;
    // Only regexps may be quoted with /.../ or |...|.
    absl::StatusOr<std::string> value =
        ParseValue(/*allow_alt_quotes=*/selector.op == Operator::kMatches);
    if (!value.ok()) return value.status();
    selector.value = *std::move(value);

    // A regexp is compiled once all filters are parsed (Filter::Parse).
    return selector;
  }

  absl::StatusOr<std::vector<std::string>> ParseFieldPath() {
    std::vector<std::string> fieldpath;
    while (true) {
      const Token token = scanner_.Scan();
      if (token.kind == kField) {
        fieldpath.emplace_back(token.text);
      } else if (token.kind == kQuoted) {
        absl::StatusOr<std::string> field =
            UnquoteToken(token, /*allow_alt_quotes=*/false);
        if (!field.ok()) return field.status();
        fieldpath.push_back(*std::move(field));
      } else if (token.kind == kIllegal) {
        return Error(token.pos, scanner_.error());
      } else {
        return Error(token.pos, "expected field");
      }
      if (scanner_.Peek() != '.') return fieldpath;
      scanner_.Scan();
    }
  }

  absl::StatusOr<Operator> ParseOperator() {
    const Token token = scanner_.Scan();
    if (token.kind == kIllegal) return Error(token.pos, scanner_.error());
    if (token.kind != kOperator) return Error(token.pos, "expected operator");
    if (token.text == "==") return Operator::kEqual;
    if (token.text == "!=") return Operator::kNotEqual;
    if (token.text == "~=") return Operator::kMatches;
    return Error(token.pos, absl::StrCat("unsupported operator \"",
                                         std::string(token.text), "\""));
  }

  absl::StatusOr<std::string> ParseValue(bool allow_alt_quotes) {
    const Token token = scanner_.Scan();
    if (token.kind == kValue || token.kind == kField) {
      return std::string(token.text);
    }
    if (token.kind == kQuoted) return UnquoteToken(token, allow_alt_quotes);
    if (token.kind == kIllegal) return Error(token.pos, scanner_.error());
    return Error(token.pos, "expected value");
  }

  absl::StatusOr<std::string> UnquoteToken(const Token& token,
                                           bool allow_alt_quotes) {
    if (!allow_alt_quotes && token.text.front() != '"') {
      return Error(token.pos, "only ~= accepts /.../ or |...| quoting");
    }
    std::optional<std::string> unquoted = Unquote(token.text);
    if (!unquoted.has_value()) {
      return Error(token.pos, "invalid quoted string");
    }
    return *std::move(unquoted);
  }

  std::string Prefix() const { return FilterPrefix(input_); }

  absl::Status Error(size_t pos, const std::string& message) const {
    if (pos >= input_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(Prefix(), message));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(Prefix(), message, " at offset ", pos));
  }

  std::string_view input_;
  Scanner scanner_;
};

struct FieldValue {
  std::string_view value;
  bool present = false;
};

// containerd's adaptSnapshot: name and parent are always present (even when
// empty), kind only when known, labels only when the label exists. Path
// components after name, parent or kind are ignored.
FieldValue Lookup(const Info& info, const Selector& selector) {
  if (selector.field == "kind") {
    if (info.kind == Kind::kActive || info.kind == Kind::kView ||
        info.kind == Kind::kCommitted) {
      const auto kind = KindName(info.kind);
      return {std::string_view(kind.data(), kind.size()), true};
    }
    return {};
  }
  if (selector.field == "name") return {info.name, true};
  if (selector.field == "parent") return {info.parent, true};
  if (selector.field == "labels") {
    const auto it = info.labels.find(selector.label_key);
    if (it == info.labels.end()) return {};
    return {it->second, true};
  }
  return {};
}

bool SelectorMatches(const Selector& selector, const Info& info) {
  const FieldValue field = Lookup(info, selector);
  switch (selector.op) {
    case Operator::kPresent:
      return field.present;
    case Operator::kEqual:
      return field.present && field.value == selector.value;
    case Operator::kNotEqual:
      // As in containerd, a missing field compares as "".
      return field.value != selector.value;
    case Operator::kMatches:
      // As in containerd, a missing field is matched as "".
      return RE2::PartialMatch(field.value, *selector.regexp);
  }
  return false;
}

}  // namespace

struct Filter::Impl {
  bool matches_all = false;
  std::vector<Conjunction> alternatives;
};

absl::StatusOr<Filter> Filter::Parse(const std::vector<std::string>& filters) {
  auto impl = std::make_shared<Impl>();
  // containerd parses "" as "always true", which makes the whole OR true.
  impl->matches_all = filters.empty();
  std::vector<const std::string*> sources;  // of each alternative
  size_t regexps = 0;
  for (const std::string& filter : filters) {
    if (filter.empty()) {
      impl->matches_all = true;
      continue;
    }
    absl::StatusOr<Conjunction> selectors = Parser(filter).Parse();
    if (!selectors.ok()) return selectors.status();
    for (const Selector& selector : *selectors) {
      if (selector.op == Operator::kMatches) ++regexps;
    }
    impl->alternatives.push_back(*std::move(selectors));
    sources.push_back(&filter);
  }
  if (regexps > kMaxRegexps) {
    return absl::InvalidArgumentError(
        absl::StrCat("filters: ", regexps,
                     " regexps (~=) in one request; at most ", kMaxRegexps));
  }
  // containerd compiles a regexp when matching and treats a bad one as
  // "never matches"; rejecting it up front is deliberate.
  for (size_t i = 0; i < impl->alternatives.size(); ++i) {
    for (Selector& selector : impl->alternatives[i]) {
      if (selector.op != Operator::kMatches) continue;
      absl::StatusOr<std::unique_ptr<const RE2>> regexp = CompileRegexp(
          selector.value, kRegexpMemory / static_cast<int64_t>(regexps));
      if (!regexp.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(FilterPrefix(*sources[i]), regexp.status().message()));
      }
      selector.regexp = *std::move(regexp);
    }
  }
  if (impl->matches_all) impl->alternatives.clear();
  return Filter(std::move(impl));
}

bool Filter::Matches(const Info& info) const {
  if (impl_->matches_all) return true;
  for (const Conjunction& selectors : impl_->alternatives) {
    bool all = true;
    for (const Selector& selector : selectors) {
      if (!SelectorMatches(selector, info)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

bool Filter::MatchesAll() const { return impl_->matches_all; }

std::optional<std::vector<Filter::LabelLookup>> Filter::LabelLookups() const {
  if (impl_->matches_all) return std::nullopt;
  std::vector<LabelLookup> lookups;
  for (const Conjunction& selectors : impl_->alternatives) {
    // An equality narrows more than a presence test.
    const Selector* best = nullptr;
    for (const Selector& selector : selectors) {
      if (selector.field != "labels") continue;
      if (selector.op == Operator::kEqual) {
        best = &selector;
        break;
      }
      if (selector.op == Operator::kPresent && best == nullptr) best = &selector;
    }
    if (best == nullptr) return std::nullopt;
    LabelLookup lookup{best->label_key, std::nullopt};
    if (best->op == Operator::kEqual) lookup.value = best->value;
    lookups.push_back(std::move(lookup));
  }
  return lookups;
}

Filter::Filter(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Filter::~Filter() = default;

}  // namespace cpp_overlay::metadata
