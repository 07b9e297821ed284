// JSON Patch (RFC 6902): the operations on the RFC's own examples (its
// appendix A), all or nothing, and errors that name the operation.
#include "gateway/common/json_patch.h"

#include <gtest/gtest.h>

namespace gw::json {
namespace {

Document doc(std::string_view text) {
  auto d = parse(text);
  EXPECT_TRUE(d.has_value()) << text;
  return d ? std::move(*d) : Document();
}

// Applies `patch` to `target`; returns the result as compact JSON, or
// "error:<element path>" when the patch fails.
std::string apply(std::string_view target, std::string_view patch) {
  Document t = doc(target);
  Document p = doc(patch);
  auto r = apply_patch(t, p);
  if (!r) return "error:" + r.error().expression;
  return to_string(t);
}

TEST(JsonPatch, TheOperationsOfRfc6902AppendixA) {
  EXPECT_EQ(apply(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux"}])"), R"({"foo":"bar","baz":"qux"})");
  EXPECT_EQ(apply(R"({"foo":["bar","baz"]})", R"([{"op":"add","path":"/foo/1","value":"qux"}])"),
            R"({"foo":["bar","qux","baz"]})");
  EXPECT_EQ(apply(R"({"baz":"qux","foo":"bar"})", R"([{"op":"remove","path":"/baz"}])"), R"({"foo":"bar"})");
  EXPECT_EQ(apply(R"({"foo":["bar","qux","baz"]})", R"([{"op":"remove","path":"/foo/1"}])"), R"({"foo":["bar","baz"]})");
  EXPECT_EQ(apply(R"({"baz":"qux","foo":"bar"})", R"([{"op":"replace","path":"/baz","value":"boo"}])"),
            R"({"baz":"boo","foo":"bar"})");
  EXPECT_EQ(apply(R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})",
                  R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])"),
            R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})");
  EXPECT_EQ(apply(R"({"foo":["all","grass","cows","eat"]})", R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])"),
            R"({"foo":["all","cows","eat","grass"]})");
  EXPECT_EQ(apply(R"({"foo":["bar"]})", R"([{"op":"add","path":"/foo/-","value":["abc","def"]}])"),
            R"({"foo":["bar",["abc","def"]]})");
  EXPECT_EQ(apply(R"({"a":{"b":1}})", R"([{"op":"copy","from":"/a","path":"/c"}])"), R"({"a":{"b":1},"c":{"b":1}})");
  // "~1" is "/" and "~0" is "~" in a pointer.
  EXPECT_EQ(apply(R"({"a/b":1,"m~n":2})", R"([{"op":"remove","path":"/a~1b"},{"op":"remove","path":"/m~0n"}])"), "{}");
  EXPECT_EQ(apply(R"({"baz":"qux","foo":["a",2,"c"]})",
                  R"([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])"),
            R"({"baz":"qux","foo":["a",2,"c"]})");
}

TEST(JsonPatch, AFailingOperationLeavesTheTargetUnchangedAndIsNamed) {
  Document t = doc(R"({"a":1,"b":[1,2]})");
  Document p = doc(R"([{"op":"replace","path":"/a","value":9},{"op":"remove","path":"/b/5"}])");
  auto r = apply_patch(t, p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().expression, "/1/path");
  EXPECT_EQ(r.error().code, Errc::invalid_input);
  EXPECT_EQ(to_string(t), R"({"a":1,"b":[1,2]})");

  EXPECT_EQ(apply(R"({"baz":"qux"})", R"([{"op":"test","path":"/baz","value":"bar"}])"), "error:/0/value");
  EXPECT_EQ(apply(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz/bat","value":"qux"}])"), "error:/0/path");
  EXPECT_EQ(apply(R"({"a":[1]})", R"([{"op":"add","path":"/a/2","value":3}])"), "error:/0/path");
  EXPECT_EQ(apply(R"({"a":[1]})", R"([{"op":"add","path":"/a/01","value":3}])"), "error:/0/path");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"replace","path":"/b","value":3}])"), "error:/0/path");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"add","path":"/b"}])"), "error:/0/value");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"move","path":"/b"}])"), "error:/0/from");
  EXPECT_EQ(apply(R"({"a":{"b":1}})", R"([{"op":"move","from":"/a","path":"/a/c"}])"), "error:/0/path");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"frobnicate","path":"/a"}])"), "error:/0/op");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"path":"/a"}])"), "error:/0/op");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"remove","path":"a"}])"), "error:/0/path");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"remove","path":""}])"), "error:/0/path");
  EXPECT_EQ(apply(R"({"a":1})", R"([7])"), "error:/0/op");
  EXPECT_EQ(apply(R"({"a":1})", R"({"op":"remove","path":"/a"})"), "error:");
}

}  // namespace
}  // namespace gw::json
