#pragma once
// Patient reconciliation for the feeds: which stored record a message about an
// NHS number is about, once merges (ADT^A40) and messages out of order are
// taken into account, and what a merge carries with it. Pure decisions over
// what the writer's transaction reads (store::TxView), so that what is decided
// is what is written: nothing can change in between.
//
//  - A record merged away (active false, link replaced-by) forwards to the
//    record that survived it (followed through chains): a later message naming
//    the retired number updates the survivor — its demographics, with the
//    survivor's own NHS number kept — and everything the message carries is
//    filed against the survivor.
//  - The demographics held came from a newer message (source-message-time):
//    an older message does not overwrite them.
//  - Child-protection plans held against a retired number move to the survivor
//    in the merge's own transaction, marked with the retired number.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/result.h"
#include "gateway/store/store.h"

namespace gw::identity {

// On a Patient: the instant of the feed message its demographics came from.
inline constexpr std::string_view kSourceTimeUrl = "https://cpis-gateway.nhs.uk/StructureDefinition/source-message-time";

// The NHS number identifier value of a Patient, "" when it has none.
std::string nhs_number_of(const json::Value& patient);
// The reference ("Patient/<id>" or a urn:uuid) a merged-away Patient names as
// its survivor (link type replaced-by), "" when it names none.
std::string replaced_by(const json::Value& patient);
// The source-message-time the stored demographics carry, "" when none.
std::string source_time(const json::Value& patient);
// True when a message of this instant must leave the stored demographics as
// they are: both times are known and the message's is the older.
bool older_than_stored(std::string_view message_time, const json::Value& stored_patient);

// The live record an update keyed on an NHS number applies to.
struct Subject {
  store::StoredResource record;  // the Patient holding the number, or the survivor it was merged into
  bool merged_away = false;      // the number's own record was merged into `record`
};

// The record holding `nhs` (normalised) and, when it was merged away, the
// survivor at the end of its replaced-by chain. nullopt when no live record
// holds the number. Errc::conflict when the chain loops or ends at a record
// that is gone (reported, never guessed).
Result<std::optional<Subject>> find_subject(store::TxView& view, const std::string& nhs);

// A feed's Patient about a retired number, rewritten to update the survivor:
// the survivor's NHS number identifier replaces the retired one and the
// survivor's own links are kept, so the update cannot take the survivor's
// key away or undo its merge. Demographics are the feed's, as for any update.
void retarget_to_survivor(json::Document& incoming, const json::Value& survivor);

// One plan moved by a merge: the CareTeam as it is to be stored (subject the
// survivor, marked with the retired number) and the version it replaces.
struct MovedPlan {
  std::string id;
  int64_t version = 0;
  json::Document care_team;
};

// The CP-IS plan CareTeams held against the retired record, each re-pointed
// at `survivor_ref` ("Patient/<id>") with the survivor's NHS number (when
// known) and the superseded-nhs-number mark of the retired one.
Result<std::vector<MovedPlan>> plans_moved_by_merge(store::TxView& view, const std::string& retired_id,
                                                    const std::string& retired_nhs, const std::string& survivor_ref,
                                                    const std::string& survivor_nhs);

}  // namespace gw::identity
