#pragma once
// GET /fhir/AuditEvent over the audit trail (issue 16): the BALP/FHIR search
// parameters read into a store::AuditQuery, and the page answered as a
// searchset Bundle of BALP AuditEvents (audit/balp.h). The CP-IS access
// trail (AuditEvent?patient:identifier=...) keeps its own semantics in
// cpis/cpis_api.cc; every other AuditEvent search comes here.
//
//   date=[ge|gt|le|lt|eq|sa|eb]YYYY[-MM[-DD[Thh:mm[:ss[.sss]]Z]]]   (repeat to AND)
//   agent=ODS code, system name or person (also ods-system|CODE, Organization/CODE)
//   agent-role=role        entity=Type/id        patient=Patient/id or id
//   type=rest|110106|...   subtype=read|search-type|ingest|disclose|notify|...
//   outcome=0|4|8|12       source=channel (rest, mllp, file, rest-hook, gp-feed...)
//   purpose=TREAT|ETREAT|HOPERAT|HSYSADMIN|topic purpose   _count  _offset
// Commas OR values within one parameter. Anything else is a 400 naming it.
#include <string>
#include <string_view>

#include "gateway/common/result.h"
#include "gateway/store/store.h"

namespace gw::audit {

// Errors are Errc::invalid_input with Error::expression naming the parameter.
Result<store::AuditQuery> parse_trail_query(std::string_view query, int max_count);

// The searchset Bundle of one page; base is ".../fhir"; query the raw query
// (its _count/_offset replaced in the paging links).
std::string trail_bundle(const std::string& base, std::string_view query, const store::AuditPage& page, int count,
                         int64_t offset);

}  // namespace gw::audit
