#pragma once
// Load for durability tests against the real binary: threads that create
// Patients (each with its own valid NHS number) as role integration until
// stopped, keeping the id of every create answered 201 — the writes the
// gateway has acknowledged and so must never lose.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gw::test {

// The "id" of a resource in a response body ("" when there is none).
std::string resource_id(const std::string& body);

class PatientWriters {
 public:
  // NHS numbers nhs_number_for(first_nhs + thread * 10000 + i): distinct
  // across threads and from other writers given another first_nhs.
  PatientWriters(uint16_t port, int threads, uint32_t first_nhs);
  ~PatientWriters();
  PatientWriters(const PatientWriters&) = delete;
  PatientWriters& operator=(const PatientWriters&) = delete;

  size_t acked_count() const;
  std::vector<std::string> acked() const;
  // Waits until at least n creates were acknowledged or the time is up.
  bool wait_for(size_t n, std::chrono::milliseconds timeout) const;
  // Stops and joins the threads (a thread whose server died stops by itself).
  void stop();

 private:
  mutable std::mutex mu_;
  std::vector<std::string> acked_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// How many of these Patients the gateway on `port` does not return (read as role gp).
size_t missing_patients(uint16_t port, const std::vector<std::string>& ids);

}  // namespace gw::test
