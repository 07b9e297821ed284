#pragma once
// Whole-file legacy extracts (CAMHS XML, CASH/GUM CSV): the adapter maps
// every record it can; the records it accepts are committed in one store
// transaction with the raw file and an at-most-once key (sender + a SHA-256
// of the file), so posting the same file again changes nothing and says so.
// Records it refuses are reported one by one; a file it cannot read at all
// is kept in the quarantine. Indicators the file states about CP-IS plans
// (MHS005 CPP / LACStatus) are checked against the plans in the store first;
// each mismatch is a warning issue of the answer and of the kept file.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "gateway/common/issues.h"
#include "gateway/common/metrics.h"
#include "gateway/write/write_service.h"
#include "gateway/ingest/hl7_ingest.h"
#include "gateway/ingest/plan_crosscheck.h"
#include "gateway/store/store.h"

namespace gw::ingest {

struct FileResult {
  enum class Kind { accepted, partial, duplicate, refused, unavailable } kind = Kind::refused;
  int64_t inbound_id = 0;     // the kept file (accepted or quarantined; 0 for duplicate/unavailable)
  size_t resources = 0;       // entries committed
  std::vector<Issue> issues;  // per record/row, with the adapter's expressions
  size_t plan_mismatches = 0; // CP-IS cross-check findings among the issues (plan_crosscheck.h)
  std::string message;        // one line for people
};
const char* file_result_name(FileResult::Kind k);

// The at-most-once key of a whole file: adapter, sender and a SHA-256 of the bytes.
std::string file_idempotency_key(std::string_view adapter, std::string_view sender_ods, std::string_view raw);

// Keeps a file nothing of which was taken (inbound status "quarantined") with
// its issues, for inspection and replay. done gets the inbound id, or the
// error when the store could not keep it.
void keep_quarantined(store::Store& store, std::string_view adapter, const Source& src, std::string raw,
                      const std::vector<Issue>& issues, std::string_view reason,
                      std::function<void(Result<int64_t>)> done);

class FileIngest {
 public:
  // today: the date the CP-IS cross-check measures plan scope from (injected for tests).
  FileIngest(const adapters::Adapter& adapter, write::WriteService& writes, metrics::Registry& metrics,
             std::function<std::string()> today = {});
  // done is called once, from a store thread, after the commit it reports.
  void handle(std::string raw, Source src, std::function<void(FileResult)> done);

 private:
  // A file the adapter could map, on its way to the store.
  struct Accepted {
    std::shared_ptr<std::string> raw;
    Source src;
    std::string bundle_json;
    std::vector<Issue> issues;
    size_t resources = 0;
    bool partial = false;
    size_t plan_mismatches = 0;
    std::function<void(FileResult)> done;
  };
  void submit(Accepted a);
  void quarantine(std::shared_ptr<std::string> raw, const Source& src, std::vector<Issue> issues, std::string reason,
                  std::function<void(FileResult)> done);
  const adapters::Adapter& adapter_;
  write::WriteService& writes_;
  store::Store& store_;
  metrics::Registry& metrics_;
  std::function<std::string()> today_;
};

}  // namespace gw::ingest
