#include "gateway/events/coverage.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "gateway/area/profile_file.h"
#include "gateway/area/working_days.h"
#include "gateway/audit/audit_rows.h"
#include "gateway/common/json.h"
#include "gateway/events/disclosure.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/events/lac_assessments.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"
#include "gateway/security/visibility.h"

namespace gw::events {

namespace {

using flows::str;
using Clock = std::chrono::system_clock;

constexpr std::string_view kRelapsePlan = "https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category|relapse-prevention";
constexpr std::string_view kLocalCode = "urn:cpis-gateway:local-code";
constexpr int kPage = 500;

std::string iso_seconds(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<Clock::time_point> parse_iso_seconds(const std::string& s) {
  if (s.size() < 19) return std::nullopt;
  auto d = area::parse_date(s.substr(0, 10));
  if (!d) return std::nullopt;
  int h = 0, m = 0, sec = 0;
  if (std::sscanf(s.c_str() + 11, "%2d:%2d:%2d", &h, &m, &sec) != 3) return std::nullopt;
  return Clock::time_point(*d) + std::chrono::hours(h) + std::chrono::minutes(m) + std::chrono::seconds(sec);
}

Result<std::vector<std::string>> string_list(const json::Value& obj, std::string_view key, const std::string& source,
                                             const std::string& where) {
  std::vector<std::string> out;
  const json::Value* v = json::member(obj, key);
  if (!v) return out;
  if (!v->IsArray()) return area::bad_key(source, where + std::string(key), "must be an array of strings");
  for (const auto& x : v->GetArray()) {
    if (!x.IsString() || x.GetStringLength() == 0)
      return area::bad_key(source, where + std::string(key), "must be an array of non-empty strings");
    out.emplace_back(x.GetString(), x.GetStringLength());
  }
  return out;
}

Result<int> int_in(const json::Value& obj, std::string_view key, int lo, int hi, int dflt, const std::string& source,
                   const std::string& where) {
  const json::Value* v = json::member(obj, key);
  if (!v) return dflt;
  if (!v->IsInt() || v->GetInt() < lo || v->GetInt() > hi)
    return area::bad_key(source, where + std::string(key),
                         "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v->GetInt();
}

// What the viewer may know of a line, from the labels of the records behind it.
enum class Seen { listed, withheld, unspoken };

Seen classify(const security::LabelView& view, std::initializer_list<const json::Value*> docs) {
  Seen s = Seen::listed;
  for (const json::Value* d : docs) {
    if (!d) continue;
    auto labels = model::security_labels(*d);
    if (labels.empty()) continue;
    if (security::existence_withheld(view, labels)) return Seen::unspoken;
    if (security::content_hidden(view, labels)) s = Seen::withheld;
  }
  return s;
}

// What is known about who cares for a child, read once per child.
struct ChildFacts {
  bool found = false;
  std::optional<json::Document> patient;
  std::optional<int> age;
  std::set<std::string> roles;  // care-team roles on active care teams (ZCT HV, SN, GP, LAC...)
  bool practice = false;        // Patient.generalPractitioner names one
  bool any_team = false;        // an active care team (not a plan) with a member
  bool episode = false;         // an active episode of care
  bool maternity = false;       // an active maternity episode of care (a booked pregnancy)
};

bool any_role(const ChildFacts& f, const std::vector<std::string>& roles) {
  return std::any_of(roles.begin(), roles.end(), [&](const std::string& r) { return f.roles.count(r) > 0; });
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

class Scan {
 public:
  Scan(store::Store& store, const FlowContext& ctx, const CoverageRules& rules, const CoverageQuery& q,
       CoverageReport& out)
      : store_(store), ctx_(ctx), rules_(rules), q_(q), out_(out), lookup_(store, &ctx),
        started_(std::chrono::steady_clock::now()) {
    today_ = ctx.today();
    out_.today = today_;
    for (std::string_view k : kGapKinds) out_.counts.push_back(GapCount{std::string(k), 0, 0});
  }

  Result<void> run() {
    if (auto r = plans(); !r) return r;
    if (auto r = relapse_plans(); !r) return r;
    if (auto r = ed_questionnaires(); !r) return r;
    return feeds();
  }

 private:
  bool over_budget() const { return std::chrono::steady_clock::now() - started_ > q_.budget; }
  Error budget_error() const {
    return make_error(Errc::unavailable, "the coverage scan ran longer than its budget of " +
                                             std::to_string(q_.budget.count() / 1000) + " s; try again later");
  }

  void add(std::string_view kind, Seen seen, const std::string& patient_id, std::string detail) {
    if (seen == Seen::unspoken) return;
    auto it = std::find_if(out_.counts.begin(), out_.counts.end(), [&](const GapCount& c) { return c.kind == kind; });
    if (seen == Seen::withheld) {
      ++it->withheld;
      return;
    }
    ++it->listed;
    if (!q_.only_kind.empty() && q_.only_kind != kind) return;
    int64_t n = out_.total_lines++;
    if (q_.want_lines && n >= q_.offset && n < q_.offset + q_.count)
      out_.lines.push_back(GapLine{std::string(kind), "Patient/" + patient_id, std::move(detail)});
  }

  // Every live resource of the search, a page at a time (creation order).
  template <typename Fn>
  Result<void> each(store::SearchQuery sq, Fn&& fn) {
    sq.count = kPage;
    sq.want_total = false;
    for (int64_t offset = 0;; offset += kPage) {
      sq.offset = offset;
      auto page = store_.search(sq);
      if (!page) return page.error();
      for (const auto& r : page->items) {
        if (over_budget()) return budget_error();
        auto doc = json::parse(r.body);
        if (doc && doc->IsObject()) fn(r.id, *doc);
      }
      if (page->items.size() < static_cast<size_t>(kPage)) return {};
    }
  }

  const ChildFacts& facts(const std::string& id) {
    auto it = facts_.find(id);
    if (it != facts_.end()) return it->second;
    ChildFacts f;
    f.patient = lookup_.patient(id);
    f.found = f.patient.has_value();
    if (f.patient) {
      f.age = flows::age_on(str(*f.patient, "birthDate"), today_);
      if (const json::Value* gps = json::member(*f.patient, "generalPractitioner"); gps && gps->IsArray())
        for (const auto& g : gps->GetArray())
          if (str(g, "type") != "Practitioner" && (!flows::ods_of(&g).empty() || !str(g, "reference").empty()))
            f.practice = true;
    }
    for (const auto& t : lookup_.about("CareTeam", id)) {
      if (str(t, "status") != "active" || model::cpis::plan_type_of(t) || flows::sexual_health(t)) continue;
      const json::Value* ps = json::member(t, "participant");
      if (!ps || !ps->IsArray()) continue;
      for (const auto& p : ps->GetArray()) {
        if (json::member(p, "member")) f.any_team = true;
        const json::Value* role = json::member(p, "role");
        auto codes = [&](const json::Value& cc) {
          const json::Value* cs = cc.IsObject() ? json::member(cc, "coding") : nullptr;
          if (!cs || !cs->IsArray()) return;
          for (const auto& c : cs->GetArray())
            if (str(c, "system") == flows::kCareTeamRoleSystem) f.roles.insert(str(c, "code"));
        };
        if (role && role->IsArray())
          for (const auto& cc : role->GetArray()) codes(cc);
        else if (role)
          codes(*role);
      }
    }
    for (const auto& e : lookup_.about("EpisodeOfCare", id))
      if (str(e, "status") == "active" && !flows::sexual_health(e)) {
        f.episode = true;
        if (flows::concept_has(json::member(e, "type"), flows::kMaternity)) f.maternity = true;
      }
    return facts_.emplace(id, std::move(f)).first->second;
  }

  const json::Value* patient_doc(const ChildFacts& f) { return f.patient ? &*f.patient : nullptr; }

  // ---- unborn-child plans (UCPP), held against the pregnant woman ------------------
  // CPIS.md section 1: the plan carries no data about the unborn child, so
  // the services that must know of it are hers. While the plan is open (not
  // ended: the pregnancy has not ended) a maternity service must be caring
  // for her, or nobody is seeing the unborn child; while it is in scope
  // (12 months after it ends, as for every plan) her GP practice. The
  // health visitor is not asked for: the Healthy Child Programme's
  // antenatal contact is after 28 weeks and the pregnancy-notification flow
  // tells the team of the booking, so without a maternity service there is
  // nothing for the health visitor to hear; once born, the baby's own plan
  // is checked as a child's.
  void unborn_plan(const json::Value& plan, const std::string& mother, std::unordered_set<std::string>& seen,
                   std::unordered_set<std::string>& open_seen) {
    const ChildFacts& f = facts(mother);
    Seen s = classify(q_.view, {&plan, patient_doc(f)});
    const json::Value* period = json::member(plan, "period");
    std::string end = period ? flows::date_part(str(*period, "end")) : std::string();
    if ((end.empty() || end >= today_) && open_seen.insert(mother).second && !f.maternity &&
        !any_role(f, rules_.mw_roles))
      add(kGapKinds[6], s, mother,
          "no maternity service known for the pregnant woman (no active maternity episode of care, no midwife on "
          "her care teams); UCPP plan open");
    if (seen.insert(mother).second && !f.practice && !any_role(f, rules_.gp_roles))
      add(kGapKinds[7], s, mother, "no GP practice known for the pregnant woman; UCPP plan in scope");
  }

  // ---- children with a CP-IS plan in scope ----------------------------------------
  Result<void> plans() {
    store::SearchQuery sq;
    sq.type = "CareTeam";
    store::ParamConstraint cat{"category", {}};
    for (std::string_view abbr : {"CPP", "LAC", "UCPP"})
      cat.any_of.emplace_back(std::string(model::cpis::kSnomed),
                              std::string(model::cpis::plan_type_by_abbreviation(abbr)->snomed));
    sq.params.push_back(std::move(cat));
    std::unordered_set<std::string> child_seen, lac_seen, mother_seen, mother_open_seen;
    return each(sq, [&](const std::string& id, const json::Value& plan) {
      ++out_.plans_scanned;
      const auto* type = model::cpis::plan_type_of(plan);
      if (!type || !model::cpis::in_scope(plan, today_)) return;
      std::string child = flows::patient_id_of(plan);
      if (child.empty()) return;
      if (type->unborn) return unborn_plan(plan, child, mother_seen, mother_open_seen);
      const ChildFacts& f = facts(child);
      Seen seen = classify(q_.view, {&plan, patient_doc(f)});
      if (child_seen.insert(child).second) {
        const auto& hv = rules_.hv_roles;
        const auto& sn = rules_.sn_roles;
        std::string missing;
        if (!f.age) {
          if (!any_role(f, hv) && !any_role(f, sn))
            missing = "no health visitor or school nurse known (date of birth unknown)";
        } else if (*f.age < rules_.hv_to_age) {
          if (!any_role(f, hv))
            missing = "no health visitor known (child under " + std::to_string(rules_.hv_to_age) + ")";
        } else if (*f.age >= rules_.sn_from_age && *f.age < rules_.sn_to_age) {
          if (!any_role(f, sn))
            missing = "no school nurse known (child aged " + std::to_string(rules_.sn_from_age) + " to " +
                      std::to_string(rules_.sn_to_age - 1) + ")";
        }
        if (!missing.empty()) add(kGapKinds[0], seen, child, missing + "; " + std::string(type->abbreviation) + " plan in scope");
        if (!f.practice && !any_role(f, rules_.gp_roles))
          add(kGapKinds[1], seen, child, "no GP practice known; " + std::string(type->abbreviation) + " plan in scope");
      }
      if (type->abbreviation != "LAC") return;
      auto s = lac_schedule(id, plan, lookup_, ctx_);
      if (!s || !s->active || !lac_seen.insert(child).second) return;
      if (!any_role(f, rules_.lac_roles) && !ctx_.area->lac_health_for_authority(s->authority))
        add(kGapKinds[2], seen, child,
            "looked after (authority " + s->authority +
                "): no LAC health team on the child's care teams and none serving the authority in services.json");
      if (!s->assessments.empty() && s->assessments.back().status == "overdue") {
        const auto& a = s->assessments.back();
        add(kGapKinds[3], seen, child,
            std::string(a.kind == "IHA" ? "initial" : "review") + " health assessment due " + a.due +
                " is overdue: none recorded");
      }
    });
  }

  // ---- children of parents with a relapse-prevention plan -------------------------
  Result<void> relapse_plans() {
    store::SearchQuery sq;
    sq.type = "CarePlan";  // no category index: every CarePlan, filtered here
    std::unordered_set<std::string> child_seen;
    return each(sq, [&](const std::string&, const json::Value& plan) {
      ++out_.care_plans_scanned;
      if (str(plan, "status") != "active" || !flows::concept_has(json::member(plan, "category"), kRelapsePlan))
        return;
      std::string parent = flows::patient_id_of(plan);
      if (parent.empty()) return;
      for (const auto& child : lookup_.linked_children(parent)) {
        if (!child_seen.insert(child).second) continue;
        const ChildFacts& f = facts(child);
        if (!f.found || f.practice || f.any_team || f.episode) continue;
        add(kGapKinds[4], classify(q_.view, {&plan, patient_doc(f)}), child,
            "a parent has a relapse-prevention plan; no GP practice, care team or episode of care is known for this "
            "child");
      }
    });
  }

  // ---- ED: children at home, none linked ------------------------------------------
  bool answered_yes(const json::Value& o) const {
    const auto& ed = ctx_.area->ed();
    if (json::get_bool(o, "valueBoolean") == true) return true;
    std::vector<std::string> answers{str(o, "valueString")};
    if (const json::Value* v = json::member(o, "valueCodeableConcept"); v && v->IsObject())
      if (const json::Value* vc = json::member(*v, "coding"); vc && vc->IsArray())
        for (const auto& c : vc->GetArray()) answers.push_back(str(c, "code"));
    for (auto s : answers) {
      std::transform(s.begin(), s.end(), s.begin(), ::toupper);
      if (std::find(ed.children_yes.begin(), ed.children_yes.end(), s) != ed.children_yes.end()) return true;
    }
    return false;
  }

  Result<void> ed_questionnaires() {
    const auto& ed = ctx_.area->ed();
    if (ed.children_question.empty()) return {};
    auto today = area::parse_date(today_);
    std::string since = today ? area::format_date(*today - std::chrono::days(rules_.ed_window_days)) : today_;
    store::SearchQuery sq;
    sq.type = "Observation";
    sq.params.push_back(store::ParamConstraint{"code", {{"", ed.children_question}}});
    std::unordered_set<std::string> adult_seen;
    return each(sq, [&](const std::string&, const json::Value& o) {
      ++out_.questionnaires_scanned;
      std::string st = str(o, "status");
      if (st == "entered-in-error" || st == "cancelled") return;
      bool local = false;
      if (const json::Value* code = json::member(o, "code"))
        if (const json::Value* cs = json::member(*code, "coding"); cs && cs->IsArray())
          for (const auto& c : cs->GetArray())
            local = local || (str(c, "code") == ed.children_question && str(c, "system").rfind(kLocalCode, 0) == 0);
      if (!local || !answered_yes(o)) return;
      const json::Value* er = json::member(o, "encounter");
      std::string ref = er ? str(*er, "reference") : std::string();
      if (ref.rfind("Encounter/", 0) != 0) return;
      auto enc = lookup_.resource("Encounter", ref.substr(10));
      if (!enc) return;
      const json::Value* cls = json::member(*enc, "class");
      std::string est = str(*enc, "status");
      if (!cls || str(*cls, "code") != "EMER" || est == "entered-in-error" || est == "cancelled") return;
      const json::Value* period = json::member(*enc, "period");
      std::string date = period ? flows::date_part(str(*period, "start")) : std::string();
      if (date.empty() || date < since || date > today_) return;
      std::string adult = flows::patient_id_of(*enc);
      if (adult.empty() || adult_seen.count(adult)) return;
      auto age = flows::age_on(flows::birth_date(lookup_, adult), date);
      if (!age || *age < ed.adult_age || !lookup_.linked_children(adult).empty()) return;
      adult_seen.insert(adult);
      std::string site;
      if (const json::Value* locs = json::member(*enc, "location"); locs && locs->IsArray() && !locs->Empty())
        site = flows::ods_of(json::member((*locs)[0], "location"));
      if (site.empty()) site = flows::ods_of(json::member(*enc, "serviceProvider"));
      auto patient = lookup_.patient(adult);
      add(kGapKinds[5], classify(q_.view, {&o, &*enc, patient ? &*patient : nullptr}), adult,
          "the ED safeguarding questionnaire on " + date + (site.empty() ? "" : " at " + site) +
              " said children are at home; no child is linked to this adult");
    });
  }

  // ---- when each feed was last heard from -----------------------------------------
  // The newest REST write of the feed's writers that committed: the audit
  // trail is the one record of those on both engines (a FHIR write keeps no
  // inbound message; the resource's own lastUpdated is also moved by feeds
  // and merges). A create or update over REST leaves a row with the writer's
  // role, the resource type as topic and outcome success only after the
  // commit (audit/audit_rows.h); rows pruned by audit retention are not seen.
  Result<std::string> newest_rest_write(const CoverageFeed& feed) {
    store::AuditQuery aq;
    aq.roles = feed.rest_roles;
    aq.topics = feed.rest_resources;
    aq.actions = {"create", "update"};
    aq.outcomes = {"success"};
    aq.channels = {std::string(audit::kChannelRest)};
    aq.count = 1;
    aq.want_total = false;
    auto left = q_.budget - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    if (left <= std::chrono::milliseconds(0)) return budget_error();
    aq.budget = left;
    auto page = store_.search_audit(aq);
    if (!page) return page.error();
    return page->items.empty() ? std::string() : page->items.front().ts;
  }

  Result<void> feeds() {
    for (const auto& feed : rules_.feeds) {
      FeedSeen s{feed.name, feed.display, ""};
      for (const auto& adapter : feed.adapters) {
        auto newest = [&](const std::string& kind) -> Result<std::optional<store::InboundRow>> {
          store::InboundFilter f;
          f.adapter = adapter;
          f.kind = kind;
          f.limit = 1;
          auto rows = store_.find_inbound(f);
          if (!rows) return rows.error();
          if (rows->empty()) return std::optional<store::InboundRow>();
          return std::optional<store::InboundRow>(std::move(rows->front()));
        };
        auto any = newest("");
        if (!any) return any.error();
        if (!*any) continue;
        // A store that does not record message kinds (PostgreSQL, so far):
        // the adapter's newest message stands for the feed.
        if (feed.kinds.empty() || (*any)->kind.empty()) {
          s.last_heard = std::max(s.last_heard, (*any)->received);
          continue;
        }
        for (const auto& kind : feed.kinds) {
          auto row = newest(kind);
          if (!row) return row.error();
          if (*row) s.last_heard = std::max(s.last_heard, (**row).received);
        }
      }
      s.last_message = s.last_heard;
      if (!feed.rest_roles.empty()) {
        auto rest = newest_rest_write(feed);
        if (!rest) return rest.error();
        s.last_rest = *rest;
        s.last_heard = std::max(s.last_heard, s.last_rest);
      }
      out_.feeds.push_back(std::move(s));
    }
    return {};
  }

  store::Store& store_;
  const FlowContext& ctx_;
  const CoverageRules& rules_;
  const CoverageQuery& q_;
  CoverageReport& out_;
  StoreLookup lookup_;
  std::chrono::steady_clock::time_point started_;
  std::string today_;
  std::unordered_map<std::string, ChildFacts> facts_;
};

int weekday_number(std::string_view day) {
  static constexpr std::string_view kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                               "Thursday", "Friday", "Saturday"};
  for (int i = 0; i < 7; ++i)
    if (kDays[i] == day) return i;
  return -1;
}

// The last Sunday of a month, at 01:00 UTC.
Clock::time_point last_sunday_0100(int year, unsigned month) {
  using namespace std::chrono;
  sys_days last = year_month_day_last(std::chrono::year(year), month_day_last(std::chrono::month(month)));
  while (weekday(last) != Sunday) last -= days(1);
  return Clock::time_point(last) + hours(1);
}

}  // namespace

std::string_view gap_title(std::string_view kind) {
  if (kind == kGapKinds[0]) return "Children with a CP-IS plan and no known health visitor or school nurse";
  if (kind == kGapKinds[1]) return "Children with a CP-IS plan and no known GP practice";
  if (kind == kGapKinds[2]) return "Looked-after children with no known LAC health team";
  if (kind == kGapKinds[3]) return "Looked-after children with an overdue health assessment";
  if (kind == kGapKinds[4]) return "Children of a parent with a relapse-prevention plan, with no known caring service";
  if (kind == kGapKinds[5]) return "Adults whose ED questionnaire said children are at home, with no child linked";
  if (kind == kGapKinds[6]) return "Pregnant women with an unborn-child protection plan and no known maternity service";
  if (kind == kGapKinds[7]) return "Pregnant women with an unborn-child protection plan and no known GP practice";
  return kind;
}

Result<CoverageRules> CoverageRules::load(const std::string& profiles_dir) {
  std::string path = profiles_dir + "/" + std::string(kCoverageRulesFile);
  auto doc = area::read_profile(path);
  if (!doc) return doc.error();
  return parse(json::to_string(*doc), std::string(kCoverageRulesFile));
}

Result<CoverageRules> CoverageRules::parse(std::string_view text, const std::string& source) {
  auto doc = json::parse(text);
  if (!doc || !doc->IsObject()) return make_error(Errc::invalid_input, source + ": not a JSON object");
  const json::Value& d = *doc;
  if (auto r = area::only_keys(d,
                               {"healthVisiting", "schoolNursing", "gpRoles", "lacHealthRoles", "midwiferyRoles",
                                "edWindowDays", "feeds", "gaps", "weeklySummary"},
                               source, "");
      !r)
    return r.error();
  CoverageRules out;
  auto section = [&](std::string_view key) -> Result<const json::Value*> {
    const json::Value* v = json::member(d, key);
    if (!v) return area::bad_key(source, std::string(key), "is required");
    if (!v->IsObject()) return area::bad_key(source, std::string(key), "must be an object");
    return v;
  };
  auto hv = section("healthVisiting");
  if (!hv) return hv.error();
  if (auto r = area::only_keys(**hv, {"roles", "toAge"}, source, "healthVisiting"); !r) return r.error();
  auto sn = section("schoolNursing");
  if (!sn) return sn.error();
  if (auto r = area::only_keys(**sn, {"roles", "fromAge", "toAge"}, source, "schoolNursing"); !r) return r.error();
  for (auto [obj, key, where, dst] :
       {std::tuple{*hv, "roles", "healthVisiting.", &out.hv_roles}, std::tuple{*sn, "roles", "schoolNursing.", &out.sn_roles},
        std::tuple{&d, "gpRoles", "", &out.gp_roles}, std::tuple{&d, "lacHealthRoles", "", &out.lac_roles},
        std::tuple{&d, "midwiferyRoles", "", &out.mw_roles}}) {
    auto l = string_list(*obj, key, source, where);
    if (!l) return l.error();
    if (!l->empty()) *dst = std::move(*l);
  }
  auto hv_to = int_in(**hv, "toAge", 1, 19, 5, source, "healthVisiting.");
  auto sn_from = int_in(**sn, "fromAge", 0, 19, 5, source, "schoolNursing.");
  auto sn_to = int_in(**sn, "toAge", 1, 25, 19, source, "schoolNursing.");
  auto window = int_in(d, "edWindowDays", 1, 3660, 365, source, "");
  for (const auto* r : {&hv_to, &sn_from, &sn_to, &window})
    if (!*r) return r->error();
  out.hv_to_age = *hv_to;
  out.sn_from_age = *sn_from;
  out.sn_to_age = *sn_to;
  out.ed_window_days = *window;
  if (out.sn_to_age <= out.sn_from_age) return area::bad_key(source, "schoolNursing.toAge", "must be above fromAge");

  auto feeds = section("feeds");
  if (!feeds) return feeds.error();
  for (auto it = (*feeds)->MemberBegin(); it != (*feeds)->MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    if (name == "comment") continue;
    const std::string where = "feeds." + name;
    if (!it->value.IsObject()) return area::bad_key(source, where, "must be an object");
    if (auto r = area::only_keys(it->value, {"display", "adapters", "kinds", "rest"}, source, where); !r)
      return r.error();
    CoverageFeed f;
    f.name = name;
    auto display = area::required_string(it->value, "display", source, where);
    if (!display) return display.error();
    f.display = *display;
    auto adapters = string_list(it->value, "adapters", source, where + ".");
    if (!adapters) return adapters.error();
    f.adapters = std::move(*adapters);
    auto kinds = string_list(it->value, "kinds", source, where + ".");
    if (!kinds) return kinds.error();
    f.kinds = std::move(*kinds);
    if (const json::Value* rest = json::member(it->value, "rest")) {
      if (!rest->IsObject()) return area::bad_key(source, where + ".rest", "must be an object");
      if (auto r = area::only_keys(*rest, {"roles", "resources"}, source, where + ".rest"); !r) return r.error();
      auto roles = string_list(*rest, "roles", source, where + ".rest.");
      if (!roles) return roles.error();
      auto types = string_list(*rest, "resources", source, where + ".rest.");
      if (!types) return types.error();
      if (roles->empty() || types->empty())
        return area::bad_key(source, where + ".rest", "must name at least one role and one resource type");
      f.rest_roles = std::move(*roles);
      f.rest_resources = std::move(*types);
    }
    if (f.adapters.empty() && f.rest_roles.empty())
      return area::bad_key(source, where + ".adapters", "must name at least one adapter (or the feed's rest writers)");
    out.feeds.push_back(std::move(f));
  }
  auto gaps = section("gaps");
  if (!gaps) return gaps.error();
  for (auto it = (*gaps)->MemberBegin(); it != (*gaps)->MemberEnd(); ++it) {
    std::string kind(it->name.GetString(), it->name.GetStringLength());
    if (kind == "comment") continue;
    if (std::find(std::begin(kGapKinds), std::end(kGapKinds), kind) == std::end(kGapKinds))
      return area::bad_key(source, "gaps." + kind, "is not a gap kind the gateway finds");
    auto names = string_list(*gaps.value(), kind, source, "gaps.");
    if (!names) return names.error();
    for (const auto& n : *names)
      if (!out.feed(n)) return area::bad_key(source, "gaps." + kind, "names feed '" + n + "', which feeds does not define");
    out.gap_feeds[kind] = std::move(*names);
  }
  for (std::string_view k : kGapKinds)
    if (!out.gap_feeds.count(k)) return area::bad_key(source, "gaps." + std::string(k), "is required");

  auto weekly = section("weeklySummary");
  if (!weekly) return weekly.error();
  if (auto r = area::only_keys(**weekly, {"day", "time", "timeZone"}, source, "weeklySummary"); !r) return r.error();
  auto day = area::required_string(**weekly, "day", source, "weeklySummary");
  if (!day) return day.error();
  out.weekday = weekday_number(*day);
  if (out.weekday < 0) return area::bad_key(source, "weeklySummary.day", "must be a day name in English (Monday...)");
  auto time = area::required_string(**weekly, "time", source, "weeklySummary");
  if (!time) return time.error();
  int h = -1, m = -1;
  if (time->size() != 5 || std::sscanf(time->c_str(), "%2d:%2d", &h, &m) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
    return area::bad_key(source, "weeklySummary.time", "must be HH:MM (24-hour)");
  out.minute_of_day = h * 60 + m;
  auto tz = area::required_string(**weekly, "timeZone", source, "weeklySummary");
  if (!tz) return tz.error();
  if (*tz != "Europe/London" && *tz != "UTC")
    return area::bad_key(source, "weeklySummary.timeZone", "must be Europe/London or UTC (the zones the gateway knows)");
  out.time_zone = *tz;
  return out;
}

const CoverageFeed* CoverageRules::feed(std::string_view name) const {
  for (const auto& f : feeds)
    if (f.name == name) return &f;
  return nullptr;
}

std::chrono::minutes utc_offset(const CoverageRules& rules, Clock::time_point t) {
  if (rules.time_zone != "Europe/London") return std::chrono::minutes(0);
  using namespace std::chrono;
  int year = static_cast<int>(year_month_day(floor<days>(t)).year());
  return t >= last_sunday_0100(year, 3) && t < last_sunday_0100(year, 10) ? minutes(60) : minutes(0);
}

WeeklyDue next_weekly_due(const CoverageRules& rules, Clock::time_point after) {
  using namespace std::chrono;
  sys_days local_day = floor<days>(after + utc_offset(rules, after));
  for (int i = 0; i < 9; ++i) {
    sys_days d = local_day + days(i);
    if (static_cast<int>(weekday(d).c_encoding()) != rules.weekday) continue;
    Clock::time_point local = Clock::time_point(d) + minutes(rules.minute_of_day);
    Clock::time_point utc = local - utc_offset(rules, local - utc_offset(rules, local));
    if (utc > after) return WeeklyDue{iso_seconds(utc), area::format_date(d)};
  }
  // Unreachable: a weekday recurs within 8 days. Stop rather than guess.
  std::abort();
}

Result<CoverageReport> find_coverage_gaps(store::Store& store, const FlowContext& ctx, const CoverageRules& rules,
                                          const CoverageQuery& q) {
  CoverageReport out;
  Scan scan(store, ctx, rules, q, out);
  if (auto r = scan.run(); !r) return r.error();
  return out;
}

std::string feeds_of(const CoverageRules& rules, std::string_view kind) {
  auto it = rules.gap_feeds.find(kind);
  return it == rules.gap_feeds.end() ? std::string() : join(it->second);
}

std::string last_heard_of(const CoverageReport& report, const CoverageRules& rules, std::string_view kind) {
  auto it = rules.gap_feeds.find(kind);
  if (it == rules.gap_feeds.end()) return {};
  std::vector<std::string> out;
  for (const auto& name : it->second) {
    std::string when = "never";
    for (const auto& f : report.feeds)
      if (f.name == name && !f.last_heard.empty()) when = f.last_heard;
    out.push_back(when);
  }
  return join(out);
}

// ---- the weekly summary -----------------------------------------------------------

namespace {

store::TimerRow weekly_timer(const WeeklyDue& w) {
  return store::TimerRow{std::string(kCoverageTimerKind) + ":" + w.local_date, "", "", w.due_utc,
                         "{\"week\":\"" + w.local_date + "\"}"};
}

// Not within six days of the last summary fired.
Clock::time_point earliest_after(const std::vector<store::TimerRow>& rows, Clock::time_point now) {
  Clock::time_point after = now;
  for (const auto& r : rows)
    if (r.status == "fired")
      if (auto t = parse_iso_seconds(r.due)) after = std::max(after, *t + std::chrono::hours(24 * 6));
  return after;
}

}  // namespace

std::optional<store::TimerSet> weekly_schedule(store::Store& store, const CoverageRules& rules, Clock::time_point now) {
  auto rows = store.timers_of(std::string(kCoverageTimerKind), std::string(kCoverageTimerSubject));
  if (!rows) return std::nullopt;  // the next pass asks again
  WeeklyDue want = next_weekly_due(rules, earliest_after(*rows, now));
  const std::string now_iso = iso_seconds(now);
  for (const auto& r : *rows) {
    if (r.status != "pending") continue;
    // Due already (the gateway was down on the day): it fires this pass, late.
    // Due at the profile's time: nothing to change.
    if (r.due <= now_iso || r.due == want.due_utc) return std::nullopt;
  }
  return store::TimerSet{std::string(kCoverageTimerKind), std::string(kCoverageTimerSubject), {weekly_timer(want)}};
}

Result<std::vector<std::string>> fire_weekly_summary(store::Store& store, const Topics& topics, SubscriptionSet& subs,
                                                     const FlowContext& ctx, const store::TimerRow& t,
                                                     Clock::time_point now, store::UnitOfWork& unit) {
  if (!ctx.coverage) return make_error(Errc::internal, "coverage rules not loaded", t.key);
  const CoverageRules& rules = *ctx.coverage;
  // The next week's summary, scheduled in the unit that fires this one (this
  // one listed too, so that the set keeps it pending until it is marked fired).
  auto fired_at = parse_iso_seconds(t.due).value_or(now);
  WeeklyDue next = next_weekly_due(rules, std::max(now, fired_at + std::chrono::hours(24 * 6)));
  store::TimerRow self{t.key, "", "", t.due, t.payload};
  unit.timer_sets.push_back(
      store::TimerSet{std::string(kCoverageTimerKind), std::string(kCoverageTimerSubject), {self, weekly_timer(next)}});

  std::vector<std::string> with_events;
  const Topic* topic = topics.by_name(kCoverageTopic);
  if (!topic || !topic->fires()) return with_events;
  const std::string sent = iso_seconds(now);
  const std::string week = t.key.substr(t.key.find(':') + 1);
  // One scan per distinct view of labelled records among the subscribers.
  std::map<std::string, CoverageReport> by_view;
  for (const auto& sub : subs.all()) {
    if (sub->topic_url != topic->url || sub->status == "off" || !sub->has_owner) continue;
    if (sub->end && !sub->end->empty() && *sub->end < sent) continue;
    std::string view_key = join(sub->labels.hidden) + "/" + join(sub->labels.unspoken) +
                           (sub->labels.restricted_alone_unspoken ? "/R" : "/");
    auto it = by_view.find(view_key);
    if (it == by_view.end()) {
      CoverageQuery q;
      q.view = sub->labels;
      q.want_lines = false;
      auto report = find_coverage_gaps(store, ctx, rules, q);
      if (!report) return report.error();
      it = by_view.emplace(view_key, std::move(*report)).first;
    }
    const CoverageReport& r = it->second;
    std::vector<std::string> lines;
    std::string late = r.today > t.due.substr(0, 10)
                           ? " (sent late: the gateway was not running at " + t.due + ")"
                           : std::string();
    lines.push_back("Coverage gaps in the area on " + r.today + ", weekly summary for the week of " + week + late +
                    ". Counts only: GET /reports/coverage lists the lines.");
    for (const auto& c : r.counts)
      lines.push_back(std::string(gap_title(c.kind)) + " [" + c.kind + "]: " + std::to_string(c.listed + c.withheld));
    for (const auto& f : r.feeds)
      lines.push_back("Last heard from " + f.display + ": " + (f.last_heard.empty() ? "never" : f.last_heard));

    Disclosure d;
    d.id = "coverage-" + sub->id + "-" + week;
    d.purpose = topic->purpose.empty() ? "safeguarding-children" : topic->purpose;
    auto& doc = d.resource;
    doc.SetObject();
    auto& a = doc.GetAllocator();
    json::set(doc, "resourceType", "Communication", a);
    json::set(doc, "id", d.id, a);
    json::Value ident = json::object();
    json::set(ident, "system", kDisclosureIdSystem, a);
    json::set(ident, "value", d.id, a);
    json::Value idents = json::array();
    idents.PushBack(ident, a);
    json::set(doc, "identifier", std::move(idents), a);
    json::set(doc, "status", "completed", a);
    auto coding = [&](std::string_view system, std::string_view code) {
      json::Value c = json::object();
      json::set(c, "system", system, a);
      json::set(c, "code", code, a);
      json::Value cs = json::array();
      cs.PushBack(c, a);
      json::Value cc = json::object();
      json::set(cc, "coding", std::move(cs), a);
      json::Value arr = json::array();
      arr.PushBack(cc, a);
      return arr;
    };
    json::set(doc, "category", coding(kDisclosureTopicSystem, topic->name), a);
    json::set(doc, "sent", sent, a);
    json::Value rid = json::object();
    json::set(rid, "system", model::cpis::kOdsSystem, a);
    json::set(rid, "value", sub->owner.ods, a);
    json::Value rcpt = json::object();
    json::set(rcpt, "type", "Organization", a);
    json::set(rcpt, "identifier", std::move(rid), a);
    json::Value rcpts = json::array();
    rcpts.PushBack(rcpt, a);
    json::set(doc, "recipient", std::move(rcpts), a);
    json::set(doc, "reasonCode", coding(kDisclosurePurposeSystem, d.purpose), a);
    json::Value payload = json::array();
    for (const auto& l : lines) {
      json::Value p = json::object();
      json::set(p, "contentString", l, a);
      payload.PushBack(p, a);
    }
    json::set(doc, "payload", std::move(payload), a);
    add_to_unit(*topic, *sub, d, "Timer/" + t.key, 0, "", sub->content, unit);
    // About nobody in particular: one row for the disclosure itself.
    store::AuditRow row = audit::row(sub->owner, "disclose", "Communication/" + d.id, 0, "", "",
                                     topic->name + " weekly counts disclosed to subscription " + sub->id +
                                         " (no patient identifiers; derived from Timer/" + t.key + ")");
    row.topic = topic->name;
    row.purpose = d.purpose;
    row.channel = std::string(audit::kChannelRestHook);
    unit.audit.push_back(std::move(row));
    with_events.push_back(sub->id);
  }
  return with_events;
}

}  // namespace gw::events
