#include "gateway/model/search_params.h"

#include <gtest/gtest.h>

#include <climits>
#include <string>
#include <vector>

namespace gw::model {
namespace {

using Strings = std::vector<std::string>;

SearchRequest ok(std::string_view type, std::string_view query, bool strict = true) {
  auto r = parse_search(type, query, strict);
  EXPECT_TRUE(r.has_value()) << type << "?" << query << " -> " << (r ? "" : r.error().message);
  return r ? *r : SearchRequest{};
}

Error err(std::string_view type, std::string_view query, bool strict = true) {
  auto r = model::parse_search(type, query, strict);
  EXPECT_FALSE(r.has_value()) << "accepted: " << type << "?" << query;
  return r ? Error{} : r.error();
}

void expect_token(const TokenValue& t, bool has_system, std::string_view system, std::string_view value) {
  EXPECT_EQ(t.has_system, has_system);
  EXPECT_EQ(t.system, system);
  EXPECT_EQ(t.value, value);
}

std::vector<std::pair<std::string, std::string>> bounds(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& b : ok("Patient", query).last_updated) out.emplace_back(b.prefix, b.value);
  return out;
}

using Bounds = std::vector<std::pair<std::string, std::string>>;

// ---- percent_decode ------------------------------------------------------------

TEST(PercentDecode, DecodesEscapesAndPlus) {
  EXPECT_EQ(model::percent_decode("a%20b%7Cc%2c", true).value(), "a b|c,");
  EXPECT_EQ(model::percent_decode("a+b", true).value(), "a b");
  EXPECT_EQ(model::percent_decode("a+b", false).value(), "a+b");
  EXPECT_EQ(model::percent_decode("", true).value(), "");
}

TEST(PercentDecode, InvalidEscapesAreErrors) {
  for (const char* s : {"%zz", "abc%4", "%", "%g0", "x%0"}) {
    auto r = model::percent_decode(s, true);
    ASSERT_FALSE(r.has_value()) << s;
    EXPECT_EQ(r.error().code, Errc::invalid_input);
  }
}

// ---- supported parameters per type -----------------------------------------------

TEST(SupportedSearchParams, FollowR4Definitions) {
  EXPECT_EQ(model::supported_search_params("Patient"), (Strings{"_id", "_lastUpdated", "identifier"}));
  EXPECT_EQ(model::supported_search_params("Organization"), (Strings{"_id", "_lastUpdated", "identifier"}));
  const Strings both{"_id", "_lastUpdated", "identifier", "patient", "patient:identifier", "subject",
                     "subject:identifier"};
  for (const char* t : {"Encounter", "Observation", "Flag", "CareTeam", "CarePlan"}) {
    EXPECT_EQ(model::supported_search_params(t), both) << t;
  }
  const Strings patient_only{"_id", "_lastUpdated", "identifier", "patient", "patient:identifier"};
  for (const char* t : {"RelatedPerson", "Consent", "EpisodeOfCare"}) {
    EXPECT_EQ(model::supported_search_params(t), patient_only) << t;
  }
  EXPECT_EQ(model::supported_search_params("Subscription"), (Strings{"_id", "_lastUpdated"}));
  EXPECT_TRUE(model::supported_search_params("Medication").empty());
}

TEST(ParseSearch, UnsupportedTypeIsNotFound) {
  EXPECT_EQ(err("Medication", "").code, Errc::not_found);
}

TEST(ParseSearch, EmptyQueryGivesDefaults) {
  auto sr = ok("Patient", "");
  EXPECT_EQ(sr.count, 20);
  EXPECT_EQ(sr.offset, 0);
  EXPECT_TRUE(sr.ids.empty());
  EXPECT_TRUE(sr.identifier.empty());
  EXPECT_TRUE(sr.last_updated.empty());
  EXPECT_TRUE(sr.ignored.empty());
  EXPECT_EQ(ok("Patient", "?&&").count, 20);
}

// ---- tokens -------------------------------------------------------------------------

TEST(ParseSearch, IdentifierSystemAndValue) {
  auto sr = ok("Patient", "identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919");
  ASSERT_EQ(sr.identifier.size(), 1u);
  ASSERT_EQ(sr.identifier[0].size(), 1u);
  expect_token(sr.identifier[0][0], true, "https://fhir.nhs.uk/Id/nhs-number", "9434765919");
}

TEST(ParseSearch, EncodedBarSeparatesSystemAndValue) {
  auto sr = ok("Patient", "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9434765919");
  ASSERT_EQ(sr.identifier.size(), 1u);
  expect_token(sr.identifier[0][0], true, "https://fhir.nhs.uk/Id/nhs-number", "9434765919");
}

TEST(ParseSearch, ValueWithoutSystemAndWithEmptySystem) {
  auto sr = ok("Patient", "identifier=abc&identifier=|def");
  ASSERT_EQ(sr.identifier.size(), 2u);
  expect_token(sr.identifier[0][0], false, "", "abc");
  expect_token(sr.identifier[1][0], true, "", "def");
}

TEST(ParseSearch, RepeatsAndAndCommasOr) {
  auto sr = ok("Patient", "identifier=s|a,s|b&identifier=c");
  ASSERT_EQ(sr.identifier.size(), 2u);
  ASSERT_EQ(sr.identifier[0].size(), 2u);
  expect_token(sr.identifier[0][0], true, "s", "a");
  expect_token(sr.identifier[0][1], true, "s", "b");
  ASSERT_EQ(sr.identifier[1].size(), 1u);
  expect_token(sr.identifier[1][0], false, "", "c");
}

TEST(ParseSearch, EscapedCommaBarAndBackslashAreLiteral) {
  auto raw = ok("Patient", "identifier=a\\,b");
  ASSERT_EQ(raw.identifier[0].size(), 1u);
  expect_token(raw.identifier[0][0], false, "", "a,b");
  auto encoded = ok("Patient", "identifier=a%5C%2Cb");
  ASSERT_EQ(encoded.identifier[0].size(), 1u);
  expect_token(encoded.identifier[0][0], false, "", "a,b");
  auto bar = ok("Patient", "identifier=sys|x\\|y");
  expect_token(bar.identifier[0][0], true, "sys", "x|y");
  auto backslash = ok("Patient", "identifier=a\\\\,b");
  ASSERT_EQ(backslash.identifier[0].size(), 2u);
  expect_token(backslash.identifier[0][0], false, "", "a\\");
  expect_token(backslash.identifier[0][1], false, "", "b");
  // An unescaped encoded comma is still an OR.
  EXPECT_EQ(ok("Patient", "identifier=a%2Cb").identifier[0].size(), 2u);
}

TEST(ParseSearch, BadTokensAreRejectedWithoutEchoingTheValue) {
  for (const char* q : {"identifier=", "identifier", "identifier=sys|", "identifier=a,,b",
                        "identifier=s|9434765919|x"}) {
    Error e = err("Patient", q);
    EXPECT_EQ(e.code, Errc::invalid_input) << q;
    EXPECT_EQ(e.expression, "identifier") << q;
    EXPECT_EQ(e.message.find("9434765919"), std::string::npos) << e.message;
  }
}

// ---- references -----------------------------------------------------------------------

TEST(ParseSearch, PatientReferenceForms) {
  auto sr = ok("Observation",
               "patient=Patient/123&patient=456&patient=https://gw.example.nhs.uk/fhir/Patient/789"
               "&subject=Patient/a-1.b,abc");
  ASSERT_EQ(sr.patient_refs.size(), 3u);
  EXPECT_EQ(sr.patient_refs[0], Strings{"Patient/123"});
  EXPECT_EQ(sr.patient_refs[1], Strings{"Patient/456"});
  EXPECT_EQ(sr.patient_refs[2], Strings{"Patient/789"});
  ASSERT_EQ(sr.subject_refs.size(), 1u);
  EXPECT_EQ(sr.subject_refs[0], (Strings{"Patient/a-1.b", "Patient/abc"}));
  EXPECT_EQ(ok("Flag", "subject=Patient%2F9").subject_refs[0], Strings{"Patient/9"});
}

TEST(ParseSearch, ReferencesToOtherTypesOrMalformedAreRejected) {
  for (const char* q : {"patient=Group/1", "patient=https://x.example/fhir/Practitioner/1",
                        "patient=Patient/1/_history/2", "patient=Patient/", "patient=https://x.example",
                        "patient=bad%20id", "patient=Patient/1,Group/2", "subject=Organization/1"}) {
    Error e = err("Encounter", q);
    EXPECT_EQ(e.code, Errc::invalid_input) << q;
    EXPECT_FALSE(e.expression.empty()) << q;
  }
  EXPECT_EQ(err("Encounter", "patient=Group/1").expression, "patient");
}

TEST(ParseSearch, ChainedIdentifier) {
  auto sr = ok("CarePlan",
               "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"
               "&subject%3Aidentifier=|x,y");
  ASSERT_EQ(sr.patient_identifier.size(), 1u);
  expect_token(sr.patient_identifier[0][0], true, "https://fhir.nhs.uk/Id/nhs-number", "9434765919");
  ASSERT_EQ(sr.subject_identifier.size(), 1u);
  ASSERT_EQ(sr.subject_identifier[0].size(), 2u);
  expect_token(sr.subject_identifier[0][0], true, "", "x");
  expect_token(sr.subject_identifier[0][1], false, "", "y");
  EXPECT_TRUE(sr.patient_refs.empty());
  EXPECT_TRUE(sr.identifier.empty());
}

TEST(ParseSearch, ParametersFollowTheTypesR4Definitions) {
  // Consent and EpisodeOfCare have patient but no subject; Patient has neither;
  // Subscription has no identifier.
  EXPECT_EQ(ok("Consent", "patient=1").patient_refs.size(), 1u);
  EXPECT_EQ(ok("EpisodeOfCare", "patient:identifier=a").patient_identifier.size(), 1u);
  EXPECT_EQ(ok("Flag", "subject=1&patient=2").subject_refs.size(), 1u);
  EXPECT_EQ(err("Consent", "subject=1").message, "unknown search parameter 'subject' for Consent");
  EXPECT_EQ(err("Consent", "subject:identifier=a").expression, "subject:identifier");
  EXPECT_EQ(err("Patient", "patient=1").message, "unknown search parameter 'patient' for Patient");
  EXPECT_EQ(err("Subscription", "identifier=a").message, "unknown search parameter 'identifier' for Subscription");
  EXPECT_EQ(ok("Subscription", "_id=abc").ids, Strings{"abc"});
}

// ---- modifiers and unknown parameters --------------------------------------------------

TEST(ParseSearch, OtherModifiersAreRejectedInBothModes) {
  for (bool strict : {true, false}) {
    for (const char* q : {"identifier:text=a", "_id:missing=true", "patient:Patient=1", "subject:missing=true",
                          "_lastUpdated:missing=true", "patient:identifier:x=a", "_format:x=json"}) {
      Error e = err("Encounter", q, strict);
      EXPECT_EQ(e.code, Errc::invalid_input) << q;
      EXPECT_NE(e.message.find("modifier not supported"), std::string::npos) << e.message;
      EXPECT_EQ(e.expression, std::string(q).substr(0, std::string(q).find('='))) << q;
    }
  }
}

TEST(ParseSearch, UnknownParameterStrictIsAnError) {
  Error e = err("Patient", "identifier=a&foo=1", true);
  EXPECT_EQ(e.code, Errc::invalid_input);
  EXPECT_EQ(e.message, "unknown search parameter 'foo' for Patient");
  EXPECT_EQ(e.expression, "foo");
  EXPECT_EQ(err("Patient", "_summary=true").expression, "_summary");
  EXPECT_EQ(err("Patient", "patient.identifier=a").expression, "patient.identifier");
}

TEST(ParseSearch, UnknownParameterLenientIsIgnoredAndReported) {
  auto sr = ok("Patient", "foo=1&identifier=a&bar:exact=2&foo=3&_sort=-_lastUpdated", false);
  EXPECT_EQ(sr.ignored, (Strings{"foo", "bar:exact"}));
  // _sort is supported now (issue 13): applied, not ignored.
  ASSERT_EQ(sr.sort.size(), 1u);
  EXPECT_EQ(sr.sort[0].param, "_lastUpdated");
  EXPECT_TRUE(sr.sort[0].descending);
  ASSERT_EQ(sr.identifier.size(), 1u);
  // Known parameters still fail on bad values in lenient mode.
  EXPECT_EQ(err("Patient", "foo=1&_count=x", false).expression, "_count");
}

TEST(ParseSearch, FormatAndPrettyAreAcceptedSilently) {
  auto sr = ok("Patient", "_format=json&_pretty=true&_format=application/fhir%2Bjson", true);
  EXPECT_TRUE(sr.ignored.empty());
  EXPECT_TRUE(ok("Patient", "_format=json", false).ignored.empty());
}

// ---- _id, _count, _offset -------------------------------------------------------------

TEST(ParseSearch, IdsOr) {
  EXPECT_EQ(ok("Patient", "_id=a,b-2,c.3").ids, (Strings{"a", "b-2", "c.3"}));
  EXPECT_EQ(err("Patient", "_id=a&_id=b").expression, "_id");
  EXPECT_EQ(err("Patient", "_id=a/b").expression, "_id");
  EXPECT_EQ(err("Patient", "_id=" + std::string(65, 'a')).expression, "_id");
  EXPECT_EQ(err("Patient", "_id=").expression, "_id");
}

TEST(ParseSearch, CountAndOffset) {
  auto sr = ok("Patient", "_count=50&_offset=100");
  EXPECT_EQ(sr.count, 50);
  EXPECT_EQ(sr.offset, 100);
  EXPECT_EQ(ok("Patient", "_count=0").count, 0);
  // The ceiling belongs to the REST layer; an enormous count saturates rather than fails.
  EXPECT_EQ(ok("Patient", "_count=99999999999999999999").count, INT_MAX);
  for (const char* q : {"_count=-1", "_count=abc", "_count=1.5", "_count=", "_count=%2B5", "_count=5x"}) {
    Error e = err("Patient", q);
    EXPECT_EQ(e.code, Errc::invalid_input) << q;
    EXPECT_EQ(e.expression, "_count") << q;
  }
  EXPECT_EQ(err("Patient", "_offset=-1").expression, "_offset");
  EXPECT_EQ(err("Patient", "_offset=x").expression, "_offset");
  EXPECT_EQ(err("Patient", "_count=1&_count=2").expression, "_count");
}

// ---- _lastUpdated -----------------------------------------------------------------------

TEST(LastUpdated, EqualsExpandsToThePrecisionsInterval) {
  EXPECT_EQ(bounds("_lastUpdated=2026"),
            (Bounds{{"ge", "2026-01-01T00:00:00.000Z"}, {"lt", "2027-01-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=eq2026-12"),
            (Bounds{{"ge", "2026-12-01T00:00:00.000Z"}, {"lt", "2027-01-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=2024-02"),
            (Bounds{{"ge", "2024-02-01T00:00:00.000Z"}, {"lt", "2024-03-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=2024-02-29"),
            (Bounds{{"ge", "2024-02-29T00:00:00.000Z"}, {"lt", "2024-03-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=2026-05-15T10:30Z"),
            (Bounds{{"ge", "2026-05-15T10:30:00.000Z"}, {"lt", "2026-05-15T10:31:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=2026-05-15T10:30:15Z"),
            (Bounds{{"ge", "2026-05-15T10:30:15.000Z"}, {"lt", "2026-05-15T10:30:16.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=2026-05-15T10:30:15.123Z"),
            (Bounds{{"ge", "2026-05-15T10:30:15.123Z"}, {"lt", "2026-05-15T10:30:15.124Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=2026-05-15T10:30:15.5Z"),
            (Bounds{{"ge", "2026-05-15T10:30:15.500Z"}, {"lt", "2026-05-15T10:30:15.600Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=2026-12-31T23:59:59.999Z"),
            (Bounds{{"ge", "2026-12-31T23:59:59.999Z"}, {"lt", "2027-01-01T00:00:00.000Z"}}));
}

TEST(LastUpdated, PrefixesBecomeHalfOpenBounds) {
  EXPECT_EQ(bounds("_lastUpdated=ge2026"), (Bounds{{"ge", "2026-01-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=gt2026"), (Bounds{{"ge", "2027-01-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=le2026-05"), (Bounds{{"lt", "2026-06-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=lt2026-05-15"), (Bounds{{"lt", "2026-05-15T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=sa2026-12"), (Bounds{{"ge", "2027-01-01T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=eb2026-12-31"), (Bounds{{"lt", "2026-12-31T00:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=gt2026-05-15T10:30:15Z"), (Bounds{{"ge", "2026-05-15T10:30:16.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=le2026-05-15T10:30:15.123Z"), (Bounds{{"lt", "2026-05-15T10:30:15.124Z"}}));
}

TEST(LastUpdated, TimeZonesAreConvertedToUtc) {
  EXPECT_EQ(bounds("_lastUpdated=ge2026-05-15T10:30%2B01:00"), (Bounds{{"ge", "2026-05-15T09:30:00.000Z"}}));
  // An unencoded '+' arrives as a space.
  EXPECT_EQ(bounds("_lastUpdated=ge2026-05-15T10:30+01:00"), (Bounds{{"ge", "2026-05-15T09:30:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=ge2026-05-15T10:30:00-05:30"), (Bounds{{"ge", "2026-05-15T16:00:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=ge2026-01-01T00:30:00%2B01:00"), (Bounds{{"ge", "2025-12-31T23:30:00.000Z"}}));
  EXPECT_EQ(bounds("_lastUpdated=lt2026-12-31T23:30:00-01:00"), (Bounds{{"lt", "2027-01-01T00:30:00.000Z"}}));
}

TEST(LastUpdated, RepeatsAnd) {
  EXPECT_EQ(bounds("_lastUpdated=ge2026-01&_lastUpdated=lt2026-03"),
            (Bounds{{"ge", "2026-01-01T00:00:00.000Z"}, {"lt", "2026-03-01T00:00:00.000Z"}}));
}

TEST(LastUpdated, BadDatesAndPrefixesNameTheParameter) {
  for (const char* q :
       {"_lastUpdated=2026-02-30", "_lastUpdated=2023-02-29", "_lastUpdated=2026-13", "_lastUpdated=2026-00",
        "_lastUpdated=2026-05-00", "_lastUpdated=26", "_lastUpdated=2026-5", "_lastUpdated=2026-05-15T10:30",
        "_lastUpdated=2026-05-15T24:00Z", "_lastUpdated=2026-05-15T10:60Z", "_lastUpdated=2026-05-15T10:30:60Z",
        "_lastUpdated=2026-05-15T10:30:00.Z", "_lastUpdated=2026-05-15T10:30Z%20", "_lastUpdated=2026-05-15Z",
        "_lastUpdated=2026-05-15T10:30%2B1:00", "_lastUpdated=2026-05-15T10:30%2B15:00", "_lastUpdated=ne2026",
        "_lastUpdated=ap2026", "_lastUpdated=xx2026", "_lastUpdated=ge", "_lastUpdated=2026,2027",
        "_lastUpdated=le9999", "_lastUpdated="}) {
    Error e = err("Patient", q);
    EXPECT_EQ(e.code, Errc::invalid_input) << q;
    EXPECT_EQ(e.expression, "_lastUpdated") << q;
    EXPECT_NE(e.message.find("_lastUpdated"), std::string::npos) << q << " -> " << e.message;
  }
  EXPECT_NE(err("Patient", "_lastUpdated=ne2026").message.find("'ne' is not supported"), std::string::npos);
  EXPECT_NE(err("Patient", "_lastUpdated=2026-02-30").message.find("not a valid date"), std::string::npos);
}

TEST(ParseSearch, InvalidPercentEncodingNamesTheParameter) {
  Error e = err("Patient", "identifier=a%zz");
  EXPECT_EQ(e.code, Errc::invalid_input);
  EXPECT_EQ(e.expression, "identifier");
  EXPECT_EQ(err("Patient", "ident%zzifier=a").code, Errc::invalid_input);
}

TEST(ParseSearch, IncludeAndRevincludeFollowPatientReferencesOnly) {
  auto inc = ok("Observation", "_include=Observation:patient&_include=Observation:subject:Patient");
  ASSERT_EQ(inc.includes.size(), 2u);
  EXPECT_EQ(inc.includes[0].source_type, "Observation");
  EXPECT_EQ(inc.includes[0].param, "patient");
  EXPECT_EQ(inc.includes[1].param, "subject");
  auto rev = ok("Patient", "_revinclude=Flag:subject");
  ASSERT_EQ(rev.revincludes.size(), 1u);
  EXPECT_EQ(rev.revincludes[0].source_type, "Flag");
  // The searched type must be the source of an _include; only Patient targets are indexed.
  EXPECT_EQ(err("Observation", "_include=Encounter:patient").expression, "_include");
  EXPECT_EQ(err("Observation", "_include=Observation:performer").expression, "_include");
  EXPECT_EQ(err("Observation", "_include=Observation:subject:Group").expression, "_include");
  EXPECT_EQ(err("Observation", "_include=*").expression, "_include");
  EXPECT_EQ(err("Observation", "_include:iterate=Observation:patient").expression, "_include:iterate");
  EXPECT_EQ(err("Observation", "_revinclude=Flag:subject").expression, "_revinclude");
  EXPECT_EQ(err("Patient", "_revinclude=Organization:patient").expression, "_revinclude");
}

}  // namespace
}  // namespace gw::model
