#pragma once
// What is waiting to be acknowledged (issue 17 part 1), for the dashboard:
// the safeguarding disclosures (Communications the fan-out derived, and the
// escalations the timers sent) still `in-progress`, counted per receiving
// organisation and topic, with how many of them have been escalated — to the
// organisation's safeguarding lead (first deadline passed) and on to the
// designated nurse (second deadline passed). Read through the Store
// interface (a search on Communication status, the escalation timers of each
// disclosure), so both engines answer the same. Counts only: no subject, no
// content.
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/store/store.h"

namespace gw::admin {

struct BacklogRow {
  std::string organisation;       // the recipient's ODS code
  std::string topic;              // the disclosure's topic (category, notification-topic)
  int64_t unacknowledged = 0;     // in-progress now
  int64_t escalated = 0;          // of which the first deadline passed: the safeguarding lead was told
  int64_t escalated_to_nurse = 0; // of which the second passed too: the designated nurse was told
};

struct Backlog {
  std::vector<BacklogRow> rows;   // by organisation, then topic
  int64_t unacknowledged = 0, escalated = 0, escalated_to_nurse = 0;
  bool truncated = false;         // more than the bound: counted up to it, and said so
};

// hidden_labels: the caller's (Policy::hidden_labels): a disclosure it may not
// know exists is not counted for it. Call on a store reader thread.
Result<Backlog> disclosure_backlog(store::Store& store, const std::vector<std::string>& hidden_labels);

}  // namespace gw::admin
