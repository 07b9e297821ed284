#pragma once
// Cross-feed merge of resources that several legacy feeds write (profiles/
// merge/feeds.json): a CAMHS extract updating a Patient that SystmOne filled
// in must not blank the GP, the address or the names it does not send. The
// transaction runner applies it to an adapter's update of an existing
// resource, against the version it read, and commits with If-Match on that
// version (a concurrent write makes it read, merge and try again).
#include <memory>
#include <string>
#include <string_view>

#include "gateway/common/json.h"
#include "gateway/common/result.h"

namespace gw::write {

class MergePolicy {
 public:
  // Reads profiles_dir/merge/feeds.json. Errors name the file and the key.
  static Result<MergePolicy> load(const std::string& profiles_dir);
  static Result<MergePolicy> parse(std::string_view json_text);

  // True when updates of `type` from adapter `feed` are merged.
  bool merges(std::string_view type, std::string_view feed) const;

  // Rewrites `incoming` (what `feed` sends) into the version to store, given
  // the `current` stored version. Only for (type, feed) that merges().
  void merge(std::string_view type, std::string_view feed, const json::Value& current,
             json::Document& incoming) const;

  MergePolicy();
  ~MergePolicy();
  MergePolicy(MergePolicy&&) noexcept;
  MergePolicy& operator=(MergePolicy&&) noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::write
