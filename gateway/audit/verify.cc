#include "gateway/audit/verify.h"

#include <charconv>

#include "gateway/audit/checkpoints.h"
#include "gateway/store/audit_chain.h"
#include "gateway/store/postgres/audit_trail.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/sqlite/audit_trail.h"

namespace gw::audit {

std::optional<std::pair<int64_t, std::string>> parse_anchor(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  int64_t seq = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + colon, seq);
  if (ec != std::errc() || p != text.data() + colon || seq <= 0) return std::nullopt;
  std::string hex = text.substr(colon + 1);
  if (hex.size() != store::audit_chain::kHashBytes * 2) return std::nullopt;
  std::string bytes;
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [q, e2] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (e2 != std::errc() || q != hex.data() + i + 2) return std::nullopt;
    bytes.push_back(static_cast<char>(v));
  }
  return std::make_pair(seq, bytes);
}

VerifyResult verify_trail(const VerifyOptions& o) {
  VerifyResult out;
  // Both engines report the same facts (their rows feed one audit_chain::Verifier).
  auto report = o.conninfo.empty() ? store::sqlite::verify_audit_file(o.db_path, o.anchor)
                                   : store::pg::verify_audit(o.conninfo, o.anchor);
  if (!report) {
    out.exit_code = 2;
    out.report = "audit verify: " + report.error().message + "\n";
    return out;
  }
  std::vector<store::audit_chain::Finding> findings = report->findings;
  // Signatures: a checkpoint that does not verify is a finding at its record.
  int64_t signed_ok = 0, migration = 0;
  std::string signers;
  for (const auto& cp : report->checkpoints) {
    if (cp.signer == store::audit_chain::kMigrationSigner) {
      ++migration;
      continue;
    }
    if (auto v = verify_checkpoint(cp, o.ca_file); !v) {
      findings.push_back({cp.seq, "the checkpoint of " + cp.ts + " at record " + std::to_string(cp.seq) +
                                      " is not to be trusted: " + v.error().message});
      continue;
    }
    ++signed_ok;
    std::string name = signer_name(cp);
    if (signers.find(name) == std::string::npos) signers += (signers.empty() ? "" : "; ") + name;
  }
  std::sort(findings.begin(), findings.end(),
            [](const auto& a, const auto& b) { return a.seq < b.seq; });
  std::string& t = out.report;
  t += "audit trail of " + (o.conninfo.empty() ? o.db_path : "postgresql (" + store::pg::redact_conninfo(o.conninfo) + ")") + "\n";
  t += "  records: " + std::to_string(report->records);
  if (report->records) t += " (" + std::to_string(report->first_seq) + " to " + std::to_string(report->last_seq) + ")";
  t += "\n  head: " + std::to_string(report->last_seq) + ":" + report->head + "\n";
  t += "  checkpoints: " + std::to_string(report->checkpoints.size()) + " (" + std::to_string(signed_ok) +
       " signed and verified" + (migration ? ", " + std::to_string(migration) + " for the records older than the chain" : "") +
       "), " + std::to_string(report->checkpoints_matched) + " matching the chain\n";
  if (!signers.empty()) t += "  signed by: " + signers + "\n";
  if (o.ca_file.empty() && signed_ok) t += "  note: signers were not checked against a CA (give --ca FILE)\n";
  if (o.anchor) t += "  anchor: record " + std::to_string(o.anchor->first) + "\n";
  if (findings.empty()) {
    t += "intact\n";
    return out;
  }
  out.exit_code = 1;
  t += "NOT INTACT: first bad record " + std::to_string(findings.front().seq) + ": " + findings.front().what + "\n";
  for (size_t i = 1; i < findings.size(); ++i)
    t += "  also record " + std::to_string(findings[i].seq) + ": " + findings[i].what + "\n";
  return out;
}

}  // namespace gw::audit
