#pragma once
// HTTP faces of ingest:
//   POST /ingest/{adapter}   a legacy file: for systmone one HL7 message, a
//                            batch FHS/BHS..BTS/FTS, or messages back to back
//                            (answered per message); for camhs an XML extract,
//                            for cashgum a CSV file (answered per record/row);
//                            cpis-upload answers itself (gateway/ingest/cpis_upload.h).
//                            Whole files are answered {adapter, outcome,
//                            message, resources, inbound_id (the kept file),
//                            problems, planMismatches (CP-IS cross-check,
//                            plan_crosscheck.h), issues}.
//                            Policy operation "ingest:{adapter}". 200 when
//                            anything was accepted (the body lists what was
//                            not), 422 when nothing was, 503 when busy.
//   GET  /admin/quarantine[?status=quarantined|accepted|replayed|superseded|all&_count=&_offset=]
//   GET  /admin/quarantine/{id}          one message, raw included
//   POST /admin/quarantine/{id}/replay   re-run it through the current mapping
//                            (policy operation "admin" for all three)
#include <map>
#include <string>

#include "gateway/ingest/file_ingest.h"
#include "gateway/ingest/hl7_ingest.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::ingest {

class IngestApi final : public net::Handler {
 public:
  // ingesters: adapter format id -> its pipeline (not owned).
  IngestApi(std::map<std::string, Hl7Ingest*> ingesters, std::map<std::string, FileIngest*> files,
            store::Store& store, const security::Policy& policy);
  void handle(net::Request req, net::Respond respond) override;
  // An adapter whose pipeline answers in its own shape (cpis-upload: an
  // OperationOutcome per record), after the same policy ("ingest:{adapter}")
  // and method checks. Not owned.
  void add_answering(const std::string& adapter, net::Handler* pipeline);
  // POST /admin/quarantine/{id}/replay for a caller already authorised
  // elsewhere (the web console, gateway/admin/web_console.h): the same
  // replay, answer and audit row ("replay", inbound/{id}).
  void replay_as(const security::Principal& who, int64_t id, net::Respond respond);

 private:
  void ingest_file(net::Request req, net::Respond respond, Hl7Ingest& ingest, const std::string& adapter);
  void ingest_whole_file(net::Request req, net::Respond respond, FileIngest& ingest, const std::string& adapter);
  void list(net::Request req, net::Respond respond);
  void show(net::Request req, net::Respond respond, int64_t id);
  void replay(net::Request req, net::Respond respond, int64_t id);

  std::map<std::string, Hl7Ingest*> ingesters_;
  std::map<std::string, FileIngest*> files_;
  std::map<std::string, net::Handler*> answering_;
  store::Store& store_;
  const security::Policy& policy_;
};

}  // namespace gw::ingest
