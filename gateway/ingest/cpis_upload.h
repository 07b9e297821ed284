#pragma once
// POST /ingest/cpis-upload: a local authority's CP-IS plan file (CPIS.md
// section 1, adapters/cpis/FORMAT.md). Each record is answered CPR06 or
// CPR07 in one OperationOutcome. The accepted records are committed in one
// store transaction with the raw file and its at-most-once key; the answer
// (2xx) goes only after that commit. A file of which nothing is accepted, or
// that cannot be read, is kept in the quarantine and answered 422.
//
// Before mapping is committed the store is asked, for each record, whether
// its NHS number was already known (the match rate CP-IS asks for) and, for a
// withdrawal (DeleteDate), whether the plan exists (withdrawing an unknown
// plan is a CPR07). The LAODS column must be the certificate's O=, and the
// plans are written as the caller, so the access policy's own-organisation
// rule applies to them too.
#include <string>

#include "adapters/cpis/cpis_upload_adapter.h"
#include "gateway/common/metrics.h"
#include "gateway/net/http.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::ingest {

class CpisUpload final : public net::Handler {
 public:
  CpisUpload(const adapters::cpis::CpisUploadAdapter& adapter, write::WriteService& writes, metrics::Registry& metrics);
  // req.body is the file, req.principal the sender (already allowed to send it).
  void handle(net::Request req, net::Respond respond) override;

  struct Run;

 private:
  void check_against_store(std::shared_ptr<Run> run);
  void commit(std::shared_ptr<Run> run);
  void refuse(std::shared_ptr<Run> run, std::string reason);
  void answer(std::shared_ptr<Run> run, int status);
  void count(std::string_view outcome);

  const adapters::cpis::CpisUploadAdapter& adapter_;
  write::WriteService& writes_;
  store::Store& store_;
  metrics::Registry& metrics_;
};

}  // namespace gw::ingest
