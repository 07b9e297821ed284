// gw_tests' main: GoogleTest as usual, and, when GW_TEST_RESULTS_DIR is set
// (ctest sets it for every test, see tests/CMakeLists.txt), each test's
// outcome is written to a file named after it. The hazard-log check
// (tests/safety/hazard_log_check.py) runs after the suite and reads these
// files to tell a test that passed from one that failed, was skipped or did
// not run at all in this ctest run.
//
// --gw-store=postgresql puts the run on PostgreSQL (tests/support/test_store.h);
// ctest passes it to the "pg:" run of the suite. Its outcomes are kept apart
// (GW_TEST_RESULTS_DIR/postgresql is set by ctest for that run).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

class OutcomeRecorder : public ::testing::EmptyTestEventListener {
 public:
  explicit OutcomeRecorder(std::string dir) : dir_(std::move(dir)) {}

  void OnTestEnd(const ::testing::TestInfo& info) override {
    std::string name = std::string(info.test_suite_name()) + "." + info.name();
    // Parameterised names carry '/', which a file name cannot.
    std::string file;
    for (char c : name) file += c == '/' ? std::string("%2F") : std::string(1, c);
    const ::testing::TestResult* r = info.result();
    const char* outcome = r->Skipped() ? "skipped" : r->Passed() ? "passed" : "failed";
    std::ofstream(dir_ + "/" + file, std::ios::trunc) << outcome << "\n";
  }

 private:
  std::string dir_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--gw-store=", 0) == 0) {
      // The environment, so that gateway processes a test starts see it too.
      ::setenv("GW_TEST_STORE", a.substr(11).c_str(), 1);
    } else {
      std::fprintf(stderr, "gw_tests: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (const char* dir = std::getenv("GW_TEST_RESULTS_DIR"); dir && *dir) {
    ::testing::UnitTest::GetInstance()->listeners().Append(new OutcomeRecorder(dir));
  }
  return RUN_ALL_TESTS();
}
