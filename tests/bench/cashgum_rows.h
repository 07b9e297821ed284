#pragma once
// A generated GUMCAD-style CASH/GUM file for the benchmarks: about 70 %
// ATTENDANCE and 30 % RISK rows, 1 in 10 with an NHS number, 1 in 20 with a
// quoted practitioner name holding a comma, one PatientID per row (the worst
// case for the store: a Patient, an Encounter and an Observation per row).
#include <cstdio>
#include <string>

namespace gw::test {

inline std::string generate_gumcad(int rows) {
  std::string out =
      "RecordType,ClinicID,PatientID,NHSNumber,DateOfBirth,Age,Gender,LA,AttendanceDate,ActivityCode,RiskOutcome,"
      "CSEIndicators,ReferredTo,ReferralDate,Practitioner\r\n";
  const char* codes[] = {"T1", "T2", "T3", "T4", "C4", "B", "P1A", "86406008"};
  const char* outcomes[] = {"NO_CONCERN", "CONCERN_ADVICE", "CONCERN_REFERRED", "CSE_RISK"};
  char line[512];
  for (int i = 0; i < rows; ++i) {
    int age = 13 + i % 30;
    bool risk = i % 10 >= 7;
    const char* nhs = i % 10 == 0 ? "9990475148" : "";
    std::snprintf(line, sizeof line, "%s,RFRSH,GUM-2026-%06d,%s,%s,%d,%d,E08000018,%02d/%02d/2026,%s,%s,%s,%s,%s,%s\r\n",
                  risk ? "RISK" : "ATTENDANCE", i, nhs, i % 3 == 0 ? "2010-02-03" : "", age, 1 + i % 2, 1 + i % 28,
                  1 + i % 12, risk ? "" : codes[i % 8], risk ? outcomes[i % 4] : "",
                  risk ? "OLDER_PARTNER;GIFTS" : "", risk ? (i % 2 ? "SOCIAL_CARE" : "NONE") : "", "",
                  i % 20 == 0 ? "\"Smith, Dr K\"" : "Nurse A");
    out += line;
  }
  return out;
}

}  // namespace gw::test
