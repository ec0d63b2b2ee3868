// etk/lut/detail/json_text.hpp: the text layer of the GQA-LUT table files: UTF-8
// validation, escaping for JSON strings, C++ string literals and C++ comments, and a small
// strict JSON parser (RFC 8259 syntax, no extensions) into a value tree.
//
// Only what the table reader needs, with no dependency beyond the standard library: the
// parser takes a whole document, limits nesting depth (so hostile input cannot exhaust the
// stack), rejects duplicate object keys, trailing text, invalid UTF-8, unescaped control
// characters, lone surrogates and numbers outside double range, and reports every problem
// as etk::invalid_argument with the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <locale>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {
namespace detail {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if it is invalid
// (overlong forms, surrogates U+D800..U+DFFF and code points above U+10FFFF included).
inline std::size_t utf8_length(const std::string& s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

inline void check_utf8(const char* name, const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_length(s, i);
    ETK_CHECK(n != 0, "argument '" << name << "' is not valid UTF-8 (byte " << i << ")");
    i += n;
  }
}

inline void hex_escape(std::string& out, const char* prefix, unsigned value, int digits) {
  static const char kHex[] = "0123456789abcdef";
  out += prefix;
  for (int d = digits - 1; d >= 0; --d) out += kHex[(value >> (4 * d)) & 0xF];
}

// A JSON string literal (with quotes) of valid UTF-8 text: '"', '\' and every control
// character (U+0000..U+001F, U+007F) escaped; other UTF-8 kept as it is.
inline std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') out += '\\', out += ch;
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) hex_escape(out, "\\u", c, 4);
    else out += ch;
  }
  return out + "\"";
}

// A C++ string literal (with quotes): printable ASCII as it is except '"', '\' and '?'
// (no trigraph can form), every other byte as a 3-digit octal escape (which never
// absorbs a following digit, unlike \x).
inline std::string cpp_string(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\' || c == '?') out += '\\', out += ch;
    else if (c >= 0x20 && c < 0x7F) out += ch;
    else {
      out += '\\';
      out += static_cast<char>('0' + ((c >> 6) & 7));
      out += static_cast<char>('0' + ((c >> 3) & 7));
      out += static_cast<char>('0' + (c & 7));
    }
  }
  return out + "\"";
}

// One line of a // comment: printable ASCII except '\' and '?' kept, those two and every
// other byte shown as \xNN. The line then never ends in a backslash (which would splice
// the next line, e.g. #pragma once, into the comment) and holds no newline.
inline std::string comment_text(const std::string& line) {
  std::string out;
  for (char ch : line) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '?') out += ch;
    else hex_escape(out, "\\x", c, 2);
  }
  return out;
}

// ---- strict JSON parser ------------------------------------------------------------------
struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool flag = false;
  double number = 0.0;
  std::string text;         // string value, or a number's literal text
  std::size_t offset = 0;   // byte offset of the value in the document
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;  // in document order
};

class JsonParser {
 public:
  static constexpr int kMaxDepth = 16;

  explicit JsonParser(const std::string& text) : s_(text) {}

  JsonValue document() {
    JsonValue v = value(0);
    space();
    if (i_ != s_.size()) fail("unexpected text after the top-level value");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    ETK_THROW("argument 'json': " << what << " at byte " << i_);
  }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void expect(char c, const char* what) {
    space();
    if (!at(c)) fail(what);
    ++i_;
  }
  void literal(const char* word) {
    for (const char* p = word; *p; ++p, ++i_)
      if (!at(*p)) fail("invalid literal");
  }

  JsonValue value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 16 levels");
    space();
    if (i_ >= s_.size()) fail("unexpected end of the document");
    JsonValue v;
    v.offset = i_;
    const char c = s_[i_];
    if (c == '{') {
      v.kind = JsonValue::Kind::object;
      ++i_;
      space();
      if (at('}')) return ++i_, v;
      std::set<std::string> keys;
      for (;;) {
        space();
        if (!at('"')) fail("expected a string key");
        std::string key = string();
        if (!keys.insert(key).second) fail("duplicate object key");
        expect(':', "expected ':' after an object key");
        v.members.emplace_back(std::move(key), value(depth + 1));
        space();
        if (at(',')) { ++i_; continue; }
        expect('}', "expected ',' or '}' in an object");
        return v;
      }
    }
    if (c == '[') {
      v.kind = JsonValue::Kind::array;
      ++i_;
      space();
      if (at(']')) return ++i_, v;
      for (;;) {
        v.items.push_back(value(depth + 1));
        space();
        if (at(',')) { ++i_; continue; }
        expect(']', "expected ',' or ']' in an array");
        return v;
      }
    }
    if (c == '"') {
      v.kind = JsonValue::Kind::string;
      v.text = string();
      return v;
    }
    if (c == 't' || c == 'f') {
      v.kind = JsonValue::Kind::boolean;
      v.flag = c == 't';
      literal(v.flag ? "true" : "false");
      return v;
    }
    if (c == 'n') {
      literal("null");
      return v;
    }
    v.kind = JsonValue::Kind::number;
    number(v);
    return v;
  }

  unsigned hex4() {
    unsigned u = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      if (i_ >= s_.size()) fail("truncated \\u escape");
      const char h = s_[i_];
      u <<= 4;
      if (h >= '0' && h <= '9') u |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') u |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') u |= unsigned(h - 'A' + 10);
      else fail("invalid hex digit in a \\u escape");
    }
    return u;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // A string starting at the opening quote; returns its UTF-8 value.
  std::string string() {
    ++i_;
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') return ++i_, out;
      if (c < 0x20) fail("unescaped control character in a string");
      if (c != '\\') {
        const std::size_t n = utf8_length(s_, i_);
        if (n == 0) fail("invalid UTF-8 in a string");
        out.append(s_, i_, n);
        i_ += n;
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!(i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u')) fail("lone high surrogate in a \\u escape");
            i_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate not followed by a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: --i_; fail("invalid escape in a string");
      }
    }
  }

  bool digit() const { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }

  // RFC 8259 number grammar; the value converted in the classic locale.
  void number(JsonValue& v) {
    const std::size_t start = i_;
    if (at('-')) ++i_;
    if (at('0')) ++i_;
    else if (digit()) while (digit()) ++i_;
    else fail("invalid value");
    if (at('.')) {
      ++i_;
      if (!digit()) fail("digits expected after '.'");
      while (digit()) ++i_;
    }
    if (at('e') || at('E')) {
      ++i_;
      if (at('+') || at('-')) ++i_;
      if (!digit()) fail("digits expected in an exponent");
      while (digit()) ++i_;
    }
    v.text = s_.substr(start, i_ - start);
    std::istringstream in(v.text);
    in.imbue(std::locale::classic());
    in >> v.number;
    if (in.fail() || !(v.number - v.number == 0.0)) {
      i_ = start;
      fail("number outside the double range");
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

}  // namespace detail
}  // namespace lut
ETK_END_NAMESPACE
