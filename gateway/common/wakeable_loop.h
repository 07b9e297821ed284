#pragma once
// A background thread that runs one pass of some work, then sleeps until it
// is woken or its idle time passes: the change-feed consumers' loop (the
// subscription fan-out, the flow timers), written once.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "gateway/common/log.h"

namespace gw {

class WakeableLoop {
 public:
  WakeableLoop() = default;
  WakeableLoop(const WakeableLoop&) = delete;
  WakeableLoop& operator=(const WakeableLoop&) = delete;
  ~WakeableLoop() { stop(); }

  // step: one pass; true when more may be waiting (it runs again at once).
  // name: the thread's name in a profile or `top -H` (15 characters at most).
  void start(std::function<bool()> step, std::chrono::milliseconds idle, const char* name = nullptr) {
    step_ = std::move(step);
    idle_ = idle;
    thread_ = std::thread([this, name] {
      if (name) log::name_thread(name);
      run();
    });
  }
  void wake() {
    {
      std::lock_guard lk(mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }
  // Finishes the pass under way and joins.
  void stop() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    for (;;) {
      bool more = step_();
      std::unique_lock lk(mu_);
      if (stopping_) return;
      if (more) continue;
      cv_.wait_for(lk, idle_, [this] { return woken_ || stopping_; });
      woken_ = false;
      if (stopping_) return;
    }
  }
  std::function<bool()> step_;
  std::chrono::milliseconds idle_{1000};
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false, stopping_ = false;
  std::thread thread_;
};

}  // namespace gw
