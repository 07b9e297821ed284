#include "tests/support/patient_writers.h"

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/https_client.h"

namespace gw::test {

std::string resource_id(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject()) return {};
  return std::string(json::get_string(*d, "id").value_or(""));
}

PatientWriters::PatientWriters(uint16_t port, int threads, uint32_t first_nhs) {
  for (int t = 0; t < threads; ++t) {
    threads_.emplace_back([this, port, t, first_nhs] {
      auto c = HttpsClient::for_role(port, "integration");
      for (uint32_t i = 0; !stop_.load(); ++i) {
        auto r = c.request("POST", "/fhir/Patient",
                           fixture("fhir/Patient.json", {{"nhs", nhs_number_for(first_nhs + t * 10000 + i)}}),
                           {{"Content-Type", "application/fhir+json"}});
        if (!r) return;  // the server died under us: that request was never acknowledged
        if (r->status == 201) {
          std::lock_guard lock(mu_);
          acked_.push_back(resource_id(r->body));
        }
      }
    });
  }
}

PatientWriters::~PatientWriters() { stop(); }

size_t PatientWriters::acked_count() const {
  std::lock_guard lock(mu_);
  return acked_.size();
}

std::vector<std::string> PatientWriters::acked() const {
  std::lock_guard lock(mu_);
  return acked_;
}

bool PatientWriters::wait_for(size_t n, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (acked_count() < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void PatientWriters::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

size_t missing_patients(uint16_t port, const std::vector<std::string>& ids) {
  auto c = HttpsClient::for_role(port, "gp");
  size_t missing = 0;
  for (const auto& id : ids) {
    auto r = c.request("GET", "/fhir/Patient/" + id);
    if (!r || r->status != 200) ++missing;
  }
  return missing;
}

}  // namespace gw::test
