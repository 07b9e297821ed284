#pragma once
// An in-process gateway with subscriptions, the safeguarding flows and a real
// rest-hook receiver, for the issue 15 flow tests: subscribe as a dev-PKI
// role, feed HL7 or FHIR, and read back the Communications each receiver got.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/https_client.h"
#include "tests/support/test_gateway.h"

namespace gw::test {

class FlowFixture {
 public:
  FlowFixture();
  // Delivery gives up (dead-letters) after retry_for.
  explicit FlowFixture(std::chrono::milliseconds retry_for);
  InProcessGateway gw;
  HookReceiver rx;

  ClientResponse call(const std::string& role, const std::string& method, const std::string& target,
                      const std::string& body = "", const std::string& type = "application/fhir+json");
  // The same with a person behind it: a verified user token of someone at
  // the role's organisation (tests/support/user_tokens_kit.h), as reading a
  // disclosure needs (profiles/policy/users.json).
  ClientResponse call_as_person(const std::string& role, const std::string& method, const std::string& target,
                                const std::string& body = "", const std::string& type = "application/fhir+json");
  // A full-resource subscription of `role` on `topic`, posting to `path`; waits for the handshake.
  std::string subscribe(const std::string& role, const std::string& topic, const std::string& path);
  HttpsClient& client(const std::string& role);
  // The Patient id keyed on this NHS number ("" when unknown).
  std::string patient_id(const std::string& nhs);
  // POST /ingest/systmone as integration; expects 200.
  void hl7(const std::string& message);
  // The Communications (event focus resources) posted to path, in order.
  std::vector<json::Document> received(const std::string& path);
  // Waits until path got at least n events.
  bool wait_events(size_t n, const std::string& path, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  int64_t events_of(const std::string& subscription);
  // Waits for the fan-out and the flow timers to have consumed every change so far.
  void settle();

 private:
  std::map<std::string, HttpsClient> clients_;
};

// The focus resources of every event-notification posted to `path`, in order of arrival.
std::vector<json::Document> focus_resources(const std::vector<ReceivedPost>& posts, const std::string& path);
// The payload lines of a Communication, one per line.
std::string payload_text(const json::Value& communication);
// NHS numbers in Communication.about.
std::set<std::string> about_numbers(const json::Value& communication);
// A SystmOne A28 registering a person: PD1 practice and extra segments (ZCT, NK1).
// Each call has its own MSH-10 (a resend of one would be stored once); msh7
// is the message time (an older one does not overwrite newer demographics).
std::string a28(const std::string& nhs, const std::string& given, const std::string& dob, const std::string& gp,
                const std::vector<std::string>& extra_segments, const std::string& sex = "F",
                const std::string& msh7 = "20261103091500");
// An ED attendance (ADT^A04, PV1-2 E) at a site (PV1-3.4) on a date (YYYYMMDD), with DG1 reasons and extra OBX.
std::string ed_a04(const std::string& nhs, const std::string& dob, const std::string& site, const std::string& yyyymmdd,
                   const std::string& visit, const std::vector<std::string>& dg1_codes,
                   const std::vector<std::string>& obx = {});

}  // namespace gw::test
