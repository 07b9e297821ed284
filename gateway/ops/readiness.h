#pragma once
// What /readyz answers: whether this process can take work now. Ready means
// not draining and the store really commits and reads back (a write+read
// probe through the same writer queue every clinical write uses, so a full
// queue, a failed disk or a stuck writer shows here and not only as failed
// requests). The subscription and GP-record delivery backlog is reported
// with it but does not make the node unready: a backlog is almost always a
// receiver that is down, and taking this node out of a load balancer would
// not bring that receiver back (alerting on it is the metrics' job,
// docs/OPERATIONS.md).
//
// Probes are coalesced: one in flight at a time, a result reused for
// `reuse`, so a scraper or an attacker on the operations port cannot turn
// /readyz into a stream of fsyncs.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "gateway/store/store.h"

namespace gw::ops {

struct ReadinessOptions {
  // A probe not answered within this is reported as a store that does not
  // answer (503) to every /readyz from then on, without waiting longer.
  std::chrono::milliseconds probe_timeout{2000};
  // A probe result younger than this answers further /readyz without a new probe.
  std::chrono::milliseconds reuse{1000};
  // The cursor row the probe writes and reads back (a name no consumer uses).
  std::string probe_cursor = "ops-readyz-probe";
};

struct ReadinessReport {
  bool ready = false;
  std::string body;  // JSON: {"status", "store": {...}, "delivery": {...}}
};

class Readiness {
 public:
  // draining() is asked first on every check; it must be cheap and thread-safe.
  Readiness(store::Store& store, std::function<bool()> draining, ReadinessOptions opts = {});
  ~Readiness();
  Readiness(const Readiness&) = delete;
  Readiness& operator=(const Readiness&) = delete;

  // Calls done exactly once: at once (draining, a fresh result, a probe that
  // has overrun), or from a store thread when the probe finishes. Never blocks.
  void check(std::function<void(ReadinessReport)> done);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace gw::ops
