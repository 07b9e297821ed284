#pragma once
// One audit row: who (organisation, role, system, person) did what to which
// entity, about whom, with what outcome, through which channel and for what
// purpose (IHE BALP's questions). Every writer builds its rows here, so the
// trail has one shape whatever the channel; audit/balp.h renders them as
// AuditEvents and reports/ counts them as data flows.
#include <string>
#include <string_view>

#include "gateway/security/principal.h"
#include "gateway/store/store.h"

namespace gw::audit {

// Channels: how the event reached the gateway or left it (AuditRow::channel).
inline constexpr std::string_view kChannelRest = "rest";
inline constexpr std::string_view kChannelMllp = "mllp";
inline constexpr std::string_view kChannelMllpTls = "mllp-tls";
inline constexpr std::string_view kChannelFile = "file";          // a legacy file POSTed to /ingest
inline constexpr std::string_view kChannelRestHook = "rest-hook";  // a subscription notification
inline constexpr std::string_view kChannelGpFeed = "gp-feed";      // plans into GP records over MLLP
inline constexpr std::string_view kChannelReplay = "replay";       // a kept message run again
inline constexpr std::string_view kChannelCli = "cli";
inline constexpr std::string_view kChannelInternal = "internal";   // the gateway's own housekeeping

// Purposes of use (HL7 v3 ActReason, as BALP's purposeOfEvent).
inline constexpr std::string_view kPurposeTreatment = "TREAT";
inline constexpr std::string_view kPurposeEmergency = "ETREAT";    // unscheduled care
inline constexpr std::string_view kPurposeOperations = "HOPERAT";  // audit review, reports
inline constexpr std::string_view kPurposeSystemAdmin = "HSYSADMIN";  // integration work: quarantine, replay

// Delivery outcomes of one attempt (AuditRow::outcome of a "notify" row).
enum class Delivery { delivered, retry, dead };

// status: an HTTP-like outcome; below 400 is a success. patient_ref
// ("Patient/<id>") when the entity concerns one person; detail is free text
// that never holds a patient identifier. Channel and purpose default to a
// REST interaction for treatment; callers that know better say so.
store::AuditRow row(const security::Principal& who, std::string action, std::string entity, int status,
                    std::string request_id = {}, std::string patient_ref = {}, std::string detail = {});

// The purpose an action serves when the caller did not state one: treatment
// for reading and writing records, operations for reading the trail and its
// reports, system administration for the integration team's work.
std::string_view default_purpose(std::string_view action);

// A disclosure decided for one recipient (the actor): a notification event
// committed for it, or a derived Communication. source: "ODS|system" of the
// organisation whose record leaves (ChangeRow::source), "" when it is the gateway's own.
store::AuditRow disclosure(const security::Principal& recipient, std::string_view topic, std::string_view purpose,
                           std::string_view source, std::string entity, std::string patient_ref,
                           std::string_view channel, std::string request_id = {}, std::string detail = {});

// One delivery attempt to a recipient: delivered (with the latency from the
// commit of what it carries), to be retried, or dead-lettered.
// source as for disclosure(), so that attempts count against the same flow.
store::AuditRow delivery(const security::Principal& recipient, std::string_view topic, std::string_view purpose,
                         std::string_view source, Delivery outcome, int http_status, int64_t latency_ms,
                         std::string entity, std::string patient_ref, std::string_view channel,
                         std::string detail = {});

// The audit channel of an ingest source's channel ("mllp", "mllp-tls",
// "http", "replay"): HTTP posts of messages are "rest".
std::string audit_channel(std::string_view ingest_channel);

// Splits "ODS|system" (ChangeRow::source) into the row's src_ods / src_system.
void set_source(store::AuditRow& a, std::string_view source);
// "ODS|system" of a principal, as WriteOp::source records it.
std::string source_of(const security::Principal& who);

}  // namespace gw::audit
