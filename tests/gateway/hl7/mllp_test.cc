#include "gateway/hl7/mllp.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gw::hl7 {
namespace {

const std::string kMsg1 = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4\rPID|1\r";
const std::string kMsg2 = "MSH|^~\\&|A|B|C|D|20260101||ADT^A31|2|P|2.4\rPID|1\r";

// Everything the deframer has ready: payloads, or "<error>" for an error.
std::vector<std::string> drain(Deframer& d) {
  std::vector<std::string> out;
  while (auto r = d.pop()) out.push_back(*r ? **r : "<error:" + r->error().message + ">");
  return out;
}

TEST(Mllp, FrameWrapsInStartAndEndBlocks) {
  EXPECT_EQ(frame("abc"), std::string("\x0B" "abc\x1C\x0D"));
}

TEST(Mllp, OneFrame) {
  Deframer d;
  d.feed(frame(kMsg1));
  EXPECT_EQ(drain(d), std::vector<std::string>{kMsg1});
  EXPECT_EQ(d.discarded_bytes(), 0u);
  EXPECT_FALSE(d.in_frame());
}

TEST(Mllp, ByteByByte) {
  Deframer d;
  std::string stream = frame(kMsg1) + frame(kMsg2);
  std::vector<std::string> got;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    d.feed(std::string_view(&stream[i], 1));
    for (auto& f : drain(d)) got.push_back(f);
    // Nothing is released before its end block (FS, the second-last byte).
    if (i < frame(kMsg1).size() - 2) {
      EXPECT_TRUE(got.empty()) << "at byte " << i;
    } else if (i == frame(kMsg1).size() - 2) {
      EXPECT_EQ(got.size(), 1u);
    }
  }
  EXPECT_EQ(got, (std::vector<std::string>{kMsg1, kMsg2}));
  EXPECT_EQ(d.discarded_bytes(), 0u);
}

TEST(Mllp, EveryChunkBoundary) {
  std::string stream = frame(kMsg1) + frame(kMsg2);
  for (std::size_t cut1 = 0; cut1 <= stream.size(); ++cut1) {
    for (std::size_t cut2 = cut1; cut2 <= stream.size(); cut2 += 7) {
      Deframer d;
      d.feed(std::string_view(stream).substr(0, cut1));
      d.feed(std::string_view(stream).substr(cut1, cut2 - cut1));
      d.feed(std::string_view(stream).substr(cut2));
      ASSERT_EQ(drain(d), (std::vector<std::string>{kMsg1, kMsg2})) << cut1 << "," << cut2;
      ASSERT_EQ(d.discarded_bytes(), 0u);
    }
  }
}

TEST(Mllp, TwoFramesInOneChunk) {
  Deframer d;
  d.feed(frame(kMsg1) + frame(kMsg2));
  EXPECT_EQ(drain(d), (std::vector<std::string>{kMsg1, kMsg2}));
}

TEST(Mllp, GarbageBeforeStartBlockIsCounted) {
  Deframer d;
  d.feed("\r\nHELLO" + frame(kMsg1) + "xx" + frame(kMsg2));
  EXPECT_EQ(drain(d), (std::vector<std::string>{kMsg1, kMsg2}));
  EXPECT_EQ(d.discarded_bytes(), 9u);
}

TEST(Mllp, EndBlockWithoutCr) {
  Deframer d;
  // FS then a new VT: the first frame ends at FS, the VT starts the next.
  d.feed(std::string("\x0B") + kMsg1 + "\x1C" + frame(kMsg2));
  EXPECT_EQ(drain(d), (std::vector<std::string>{kMsg1, kMsg2}));
  EXPECT_EQ(d.discarded_bytes(), 0u);
  // FS then another byte: frame released, the byte counted as garbage.
  d.feed(std::string("\x0B") + kMsg1 + "\x1CZ");
  EXPECT_EQ(drain(d), (std::vector<std::string>{kMsg1}));
  EXPECT_EQ(d.discarded_bytes(), 1u);
}

TEST(Mllp, FrameIsReleasedAtEndBlockEvenBeforeCr) {
  Deframer d;
  d.feed(std::string("\x0B") + kMsg1 + "\x1C");
  EXPECT_EQ(drain(d), (std::vector<std::string>{kMsg1}));
  d.feed("\x0D");
  EXPECT_TRUE(drain(d).empty());
  EXPECT_EQ(d.discarded_bytes(), 0u);
}

TEST(Mllp, RestartInsideFrameDropsThePartialOne) {
  Deframer d;
  d.feed(std::string("\x0B") + "MSH|partial" + frame(kMsg1));
  EXPECT_EQ(drain(d), (std::vector<std::string>{kMsg1}));
  EXPECT_EQ(d.discarded_bytes(), 12u);
}

TEST(Mllp, OversizedFrameThenGoodOneRecovers) {
  Deframer d(64);
  std::string big(200, 'x');
  std::string stream = frame(big) + frame(kMsg1.substr(0, 40));
  // Fed in small chunks so the limit is crossed mid-chunk and across chunks.
  for (std::size_t i = 0; i < stream.size(); i += 13) d.feed(std::string_view(stream).substr(i, 13));
  auto got = drain(d);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "<error:MLLP frame exceeds max_frame_bytes=64>");
  EXPECT_EQ(got[1], kMsg1.substr(0, 40));
  EXPECT_EQ(d.discarded_bytes(), 0u);
}

TEST(Mllp, OversizedErrorHasTooLargeCode) {
  Deframer d(10);
  d.feed(std::string("\x0B") + std::string(11, 'y'));
  auto r = d.pop();
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code, Errc::too_large);
  // Reported once, not again for the rest of the frame.
  d.feed(std::string(100, 'y'));
  EXPECT_FALSE(d.pop());
  EXPECT_TRUE(d.in_frame());
  d.feed("\x1C\x0D");
  EXPECT_FALSE(d.in_frame());
  d.feed(frame("ok"));
  EXPECT_EQ(drain(d), std::vector<std::string>{"ok"});
}

TEST(Mllp, FrameExactlyAtTheLimitIsAccepted) {
  Deframer d(kMsg1.size());
  d.feed(frame(kMsg1));
  EXPECT_EQ(drain(d), std::vector<std::string>{kMsg1});
}

TEST(Mllp, OversizedResyncAtNextStartBlockWithoutEnd) {
  Deframer d(8);
  d.feed(std::string("\x0B") + std::string(50, 'z') + frame("good"));
  EXPECT_EQ(drain(d), (std::vector<std::string>{"<error:MLLP frame exceeds max_frame_bytes=8>", "good"}));
}

}  // namespace
}  // namespace gw::hl7
